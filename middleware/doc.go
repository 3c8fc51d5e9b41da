// Package middleware is what a Gin application mounts on its WebSocket
// route: it authenticates the upgrade request, checks its Origin and the
// connection limits, and hands the connection to a hub.Hub.
//
//	h := hub.New(hub.Options{})
//	r := gin.Default()
//	r.GET("/ws", middleware.New(h, middleware.Options{
//		Auth:           middleware.JWT(middleware.JWTOptions{Secret: key}),
//		AllowedOrigins: []string{"https://app.example.com"},
//	}))
//
// The token is taken, first match wins, from "Authorization: Bearer", the
// "bearer.<token>" entry of Sec-WebSocket-Protocol (browsers cannot set
// headers; the response selects "ginws.v1" only), the access_token query
// parameter (wrap the engine with HideQueryToken to keep it out of access
// logs) and, when named, a cookie. Authenticators: JWT (golang-jwt/jwt/v5,
// with an explicit algorithm list), AuthFunc, and FromGinContext, which
// reuses the Principal an earlier middleware of the application stored.
//
// # Server settings
//
// The middleware runs after net/http has read the request headers, so the
// http.Server must bound that itself: set ReadHeaderTimeout (say 10 s) so a
// slow handshake (slowloris) is cut off, and keep MaxHeaderBytes at its
// default of 1 MiB or lower (the example uses 64 KiB). The hub's upgrader
// bounds writing the handshake response by hub.Options.WriteTimeout. Do not set WriteTimeout or ReadTimeout on a
// server that serves WebSockets: they would cut long-lived connections; the
// hub's heartbeat and write time-outs bound those instead.
package middleware
