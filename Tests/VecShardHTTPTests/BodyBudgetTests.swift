import Foundation
import NIOCore
import Testing
@testable import VecShardHTTP

/// Request bodies are checked before they are read and held within budgets.
@Suite struct BodyBudgetTests {
    /// A client that opens many streams and keeps sending DATA without ending any, honouring
    /// flow control as a well-behaved-but-hostile uploader does: the server stops giving window
    /// back at its per-connection budget, so what it holds stays bounded; other connections are
    /// served meanwhile, and closing the connection frees everything.
    @Test func unfinishedUploadsOnOneConnectionStayWithinTheBudget() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 256 * 1024
        limits.maxConnectionBodyBytes = 512 * 1024
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let connection = try RawConnection(port: port)
            let streams: [UInt32] = (0..<16).map { 1 + 2 * $0 }
            let sent = try await blocking { () -> Int in
                connection.send(RawHTTP2.opening)
                for id in streams { connection.send(RawHTTP2.request(stream: id, method: "POST", path: "/echo", endStream: false, fields: [])) }
                var window = 65_535, sent = 0, pending: [UInt8] = []
                var quietSince = DispatchTime.now()
                let chunk = [UInt8](repeating: 0x61, count: 16_000)
                var next = 0
                // Send whatever the connection window allows; stop after 500 ms without new window.
                while DispatchTime.now().uptimeNanoseconds - quietSince.uptimeNanoseconds < 500_000_000 {
                    while window >= chunk.count && sent + chunk.count <= streams.count * 250_000 {
                        connection.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: streams[next % streams.count], payload: chunk))
                        window -= chunk.count
                        sent += chunk.count
                        next += 1
                    }
                    pending += connection.read(milliseconds: 50).bytes
                    let frames = RawHTTP2.parse(pending)
                    let consumed = frames.reduce(0) { $0 + 9 + $1.payload.count }
                    pending.removeFirst(consumed)
                    let granted = RawHTTP2.windowIncrements(frames, stream: 0)
                    if granted > 0 { window += granted; quietSince = DispatchTime.now() }
                }
                return sent
            }
            let held = server.load.stats.bufferedBodyBytes
            #expect(held <= limits.maxConnectionBodyBytes, "the server holds \(held) bytes of unfinished bodies")
            #expect(sent <= limits.maxConnectionBodyBytes + 65_535, "the client could send \(sent) bytes")
            #expect(sent >= 400_000, "the budget's window was granted (\(sent) bytes sent)")
            // Another connection is served, bodies included.
            try await withClient { client in
                let peer = Peer(host: "127.0.0.1", port: port)
                #expect(try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5)).status == 200)
                let echo = try await client.execute(ClientRequest(method: "POST", path: "/echo", body: ByteBuffer(repeating: 1, count: 100_000)),
                                                    to: peer, timeout: .seconds(5))
                #expect(echo.status == 200 && echo.body.readableBytes == 100_000)
            }
            connection.shutdownBoth()
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 0 })
        }
    }

    /// The server-wide budget: two connections, each within its own budget, together over the
    /// global one: the second is not given window back beyond it.
    @Test func theGlobalBudgetThrottlesEveryConnection() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 128 * 1024
        limits.maxConnectionBodyBytes = 512 * 1024
        limits.maxBufferedBodyBytes = 200 * 1024
        limits.connectionWindowBytes = 65_535
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let connections = try (0..<2).map { _ in try RawConnection(port: port) }
            let sent = try await blocking { () -> [Int] in
                for c in connections {
                    c.send(RawHTTP2.opening)
                    for id in stride(from: UInt32(1), through: 15, by: 2) { c.send(RawHTTP2.request(stream: id, method: "POST", path: "/echo", endStream: false, fields: [])) }
                }
                var windows = [65_535, 65_535], sent = [0, 0], pending: [[UInt8]] = [[], []]
                let chunk = [UInt8](repeating: 0x62, count: 8_000)
                for round in 0..<40 {
                    for (i, c) in connections.enumerated() {
                        while windows[i] >= chunk.count && sent[i] < 8 * 120_000 {
                            c.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: UInt32(1 + 2 * ((sent[i] / chunk.count) % 8)), payload: chunk))
                            windows[i] -= chunk.count
                            sent[i] += chunk.count
                        }
                        pending[i] += c.read(milliseconds: round < 30 ? 20 : 5).bytes
                        let frames = RawHTTP2.parse(pending[i])
                        pending[i].removeFirst(frames.reduce(0) { $0 + 9 + $1.payload.count })
                        windows[i] += RawHTTP2.windowIncrements(frames, stream: 0)
                    }
                }
                return sent
            }
            let held = server.load.stats.bufferedBodyBytes
            // Each connection may hold what it had been granted when the budget filled: at most
            // one connection window over the global budget each.
            #expect(held <= limits.maxBufferedBodyBytes + 2 * 65_535, "held \(held), sent \(sent)")
            #expect(sent.reduce(0, +) < 2 * 8 * 120_000, "flow control stopped the uploads (sent \(sent))")
            // One connection goes away: the other is given window again without sending anything.
            let before = server.load.stats.bufferedBodyBytes
            connections[0].shutdownBoth()
            let resumed = try await blocking { connections[1].read(milliseconds: 500).bytes }
            #expect(RawHTTP2.windowIncrements(RawHTTP2.parse(resumed), stream: 0) > 0,
                    "no WINDOW_UPDATE after \(before - server.load.stats.bufferedBodyBytes) bytes were freed")
        }
    }

    /// HTTP/1.1 under the server-wide budget: a connection whose body would take the total over
    /// it is not read from while another connection holds bytes, and is read again once that one
    /// hands its body over; both requests complete.
    @Test func http1StopsReadingAtTheGlobalBudgetAndResumes() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 1 << 20
        limits.maxBufferedBodyBytes = 300_000
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let first = try RawConnection(port: port), second = try RawConnection(port: port)
            first.send("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 250001\r\n\r\n")
            first.send([UInt8](repeating: 0x61, count: 250_000))
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 250_000 })
            second.send("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 600000\r\n\r\n")
            let upload = Task { try await blocking { second.send([UInt8](repeating: 0x62, count: 600_000)) } }
            try await Task.sleep(nanoseconds: 300_000_000)
            let held = server.load.stats.bufferedBodyBytes
            #expect(held < 250_000 + 600_000, "the second body is not read in full while over the budget (\(held) held)")
            first.send([0x61])
            let one = await first.receive { $0.count >= 250_001 }
            #expect(String(decoding: one.prefix(15), as: UTF8.self) == "HTTP/1.1 200 OK")
            try await upload.value
            let two = await second.receive { $0.count >= 600_000 }
            #expect(String(decoding: two.prefix(15), as: UTF8.self) == "HTTP/1.1 200 OK")
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 0 })
        }
    }

    /// The route and the key are checked on the header block: 401/404/405 arrive while the
    /// declared 60 MiB body has not been sent, and none of it is read.
    @Test func refusalsArriveBeforeTheBodyIsSent() async throws {
        var router = makeTestRouter()
        router.authorizer = { request in
            request.headers.first(name: "authorization") == "Bearer k" ? nil
                : HTTPError(.unauthorized, code: "unauthorized", message: "needs a key", headers: ["www-authenticate": "Bearer"])
        }
        try await withTestServer(router: router) { server, port in
            let big = [("content-length", String(60 << 20))]
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.opening)
            connection.send(RawHTTP2.request(stream: 1, method: "POST", path: "/echo", endStream: false, fields: big))
            connection.send(RawHTTP2.request(stream: 3, method: "POST", path: "/nowhere", endStream: false, fields: big + [("authorization", "Bearer k")]))
            connection.send(RawHTTP2.request(stream: 5, method: "PUT", path: "/echo", endStream: false, fields: big + [("authorization", "Bearer k")]))
            let frames = RawHTTP2.parse(await connection.receive { bytes in
                Set(RawHTTP2.parse(bytes).filter { $0.type == RawHTTP2.rstStream }.map(\.stream)) == [1, 3, 5]
            })
            #expect(RawHTTP2.body(frames, stream: 1).contains(#""code":"unauthorized""#))
            #expect(RawHTTP2.body(frames, stream: 3).contains(#""code":"not_found""#))
            #expect(RawHTTP2.body(frames, stream: 5).contains(#""code":"method_not_allowed""#))
            #expect(frames.filter { $0.type == RawHTTP2.rstStream }.allSatisfy { $0.payload == [0, 0, 0, 0] })
            #expect(!frames.contains { $0.type == RawHTTP2.goaway })
            #expect(server.load.stats.bufferedBodyBytes == 0)

            // HTTP/1.1: the answer comes after the head, then the connection closes.
            let h1 = try RawConnection(port: port)
            h1.send("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: \(60 << 20)\r\n\r\n")
            let reply = try await blocking { h1.read(milliseconds: 2000) }
            #expect(String(decoding: reply.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 401"))
            #expect(reply.closed)
            // An admitted request still works.
            let ok = try await curl(["--http2-prior-knowledge", "-H", "authorization: Bearer k", "--data-binary", "hello", "http://127.0.0.1:\(port)/echo"])
            #expect(ok.status == 200 && ok.body == "hello")
        }
    }
}

/// Polls `condition` for up to 3 s.
func eventually(_ condition: @escaping @Sendable () -> Bool) async throws -> Bool {
    for _ in 0..<300 {
        if condition() { return true }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    return condition()
}
