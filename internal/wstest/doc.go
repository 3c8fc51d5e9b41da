// Package wstest is the test harness the packages of ginws share: one way
// to serve a hub on loopback, one client speaking the wire protocol, one
// set of fixtures, and the conformance tests every broker passes. Every
// wait is bounded.
//
//   - server.go: a hub mounted as an application mounts it (StartApp:
//     middleware.New on a Gin route), or behind a stand-in for the
//     middleware that takes the principal from the query (Serve).
//   - wstest.go: Client, a connection that reads frames (splitting array
//     frames), makes requests, joins rooms and expects closes.
//   - reader.go: Reader, a client's connection read on a goroutine of its
//     own, counting frames, for tests that wait on something else.
//   - conn.go: raw dials: the status of an upgrade, a refusal, a close code.
//   - fixtures.go: the fixture hub (NewHub: chat.send and the other events
//     tests send), its data types, JWTs signed with Secret, a quiet logger.
//   - conformance.go: RejoinRace (a room history against the race between
//     replay and live stream) and DeliveryAcrossNodes (a broker's exactly
//     once), run on the memory implementations and on Redis.
//   - main.go: Main, the TestMain of the packages.
//   - logbuffer.go: LogBuffer, for tests that read what a server logged.
package wstest
