// Package js embeds the ginws JavaScript client (ginws.js and its type
// declarations) so that Go servers, like the example, can serve it.
package js

import "embed"

// FS holds ginws.js and ginws.d.ts.
//
//go:embed ginws.js ginws.d.ts
var FS embed.FS
