import Foundation
import NIOCore
import Testing
@testable import VecShardHTTP

/// Request bodies under the budgets always make progress: bodies are released on every path,
/// the server-wide budget bounds committed window, concurrent uploads on one connection cannot
/// deadlock, and the body clock does not run while the server itself throttles.
@Suite struct BodyBudgetProgressTests {
    /// A 60 MiB upload on an otherwise idle server streams at full speed (the window grows from
    /// its moderate start). Prints the time; fails only when it is very slow.
    @Test func aLargeUploadOnAnIdleServerStreamsAtFullSpeed() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-upload-\(UUID().uuidString)")
        try Data(repeating: 0x61, count: 60 << 20).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        var router = makeTestRouter()
        router.post("/count") { request in .json(.ok, #"{"bytes":\#(request.body.readableBytes)}"#) }
        try await withTestServer(router: router) { server, port in
            var best = Double.infinity
            for _ in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                let reply = try await curl(["--http2-prior-knowledge", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(port)/count"])
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                #expect(reply.status == 200 && reply.body == #"{"bytes":\#(60 << 20)}"#)
                best = min(best, seconds)
            }
            print("60 MiB upload over h2c: best of 3 \(best) s (\(Double(60) / best) MiB/s)")
            #expect(best < 5)
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 0 })
        }
    }

    /// A body sent to a constant-answer route (here a `.constant` /healthz, as when no API key is
    /// configured) is released from the budgets once answered, on HTTP/2 as on HTTP/1.1.
    @Test func aBodySentToAConstantRouteIsReleased() async throws {
        var router = makeTestRouter()
        router.add("GET", "/live", .constant(.json(.ok, #"{"status":"ok"}"#)))
        try await withTestServer(router: router) { server, port in
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.opening)
            for id in [UInt32(1), 3] {
                connection.send(RawHTTP2.request(stream: id, method: "GET", path: "/live", endStream: false, fields: [("content-length", "40000")]))
                connection.send(RawHTTP2.frame(type: RawHTTP2.data, flags: RawHTTP2.endStream, stream: id, payload: [UInt8](repeating: 1, count: 40_000)))
            }
            let frames = RawHTTP2.parse(await connection.receive { bytes in
                Set(RawHTTP2.parse(bytes).filter { $0.type == RawHTTP2.data && $0.flags & RawHTTP2.endStream != 0 }.map(\.stream)) == [1, 3]
            })
            #expect(RawHTTP2.body(frames, stream: 3) == #"{"status":"ok"}"#)
            // The connection stays open: its bodies must have left the budgets.
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 0 }, "\(server.load.stats.bufferedBodyBytes) bytes still held")
            #expect(server.load.committedBodyBytes.load(ordering: .relaxed) <= HTTPServerLimits().initialConnectionWindowBytes)
        }
    }

    /// The server-wide budget bounds what connections are granted, not only what they hold: 12
    /// connections against a 4 MiB global budget are granted (and can send) 4 MiB in all, beyond
    /// the 65,535 bytes each has by protocol, although each alone could take 64 MiB.
    @Test func theGlobalBudgetBoundsTheWindowsGranted() async throws {
        var limits = HTTPServerLimits()
        limits.maxBufferedBodyBytes = 4 << 20
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let connections = try (0..<12).map { _ in try RawConnection(port: port) }
            let granted = try await blocking { () -> Int in
                var total = 0
                for c in connections {
                    c.send(RawHTTP2.opening + RawHTTP2.request(stream: 1, method: "POST", path: "/echo", endStream: false, fields: []))
                }
                for c in connections { // each sends what it was granted, then reads what more it gets
                    var window = 65_535 + RawHTTP2.windowIncrements(RawHTTP2.parse(c.read(milliseconds: 50).bytes), stream: 0)
                    for _ in 0..<4 where window > 0 {
                        var left = window
                        while left > 0 {
                            let n = min(left, 16_384)
                            c.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: 1, payload: [UInt8](repeating: 7, count: n)))
                            left -= n
                        }
                        total += window
                        window = RawHTTP2.windowIncrements(RawHTTP2.parse(c.read(milliseconds: 50).bytes), stream: 0)
                    }
                }
                return total
            }
            #expect(granted <= limits.maxBufferedBodyBytes + 12 * 65_535, "\(granted) bytes of window granted")
            #expect(server.load.stats.bufferedBodyBytes <= limits.maxBufferedBodyBytes + 12 * 65_535)
            #expect(server.load.committedBodyBytes.load(ordering: .relaxed) <= limits.maxBufferedBodyBytes + 12 * 65_535)
            for c in connections { c.shutdownBoth() }
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 0 && server.load.committedBodyBytes.load(ordering: .relaxed) == 0 })
        }
    }

    /// Three 30 MiB uploads multiplexed on one connection against its 64 MiB budget, the DATA
    /// interleaved, with and without `content-length`: the bodies that fit complete, the others
    /// are refused (REFUSED_STREAM, safe to retry), none gets 408, nothing stalls.
    @Test(arguments: [false, true]) func multiplexedUploadsOverTheConnectionBudgetMakeProgress(declared: Bool) async throws {
        var limits = HTTPServerLimits()
        limits.bodyTimeout = .seconds(3) // a deadlock would show as 408s after 3 s
        var router = makeTestRouter()
        router.post("/count") { request in .json(.ok, #"{"bytes":\#(request.body.readableBytes)}"#) }
        try await withTestServer(router: router, limits: limits) { server, port in
            let connection = try RawConnection(port: port)
            let size = 30 << 20
            let outcome = try await blocking {
                rawUploads(connection, streams: [1, 3, 5], size: size, declared: declared, streamWindow: HTTPServerLimits().streamWindowBytes, seconds: 20)
            }
            let completed = outcome.filter { $0.value.body == #"{"bytes":\#(size)}"# }.map(\.key)
            let refused = outcome.filter { $0.value.reset == 7 }.map(\.key)
            #expect(completed.count >= 2, "\(outcome)")
            #expect(completed.count + refused.count == 3, "\(outcome)")
            #expect(!outcome.values.contains { $0.body.contains("request_timeout") }, "\(outcome)")
            #expect(server.load.stats.timeouts == 0)
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 0 })
        }
    }

    /// Our own client: three concurrent 30 MiB POSTs over one connection all succeed (a refused
    /// stream is retried).
    @Test func concurrentLargePostsFromOurClientAllSucceed() async throws {
        var limits = HTTPServerLimits()
        limits.bodyTimeout = .seconds(3)
        var router = makeTestRouter()
        router.post("/count") { request in .json(.ok, #"{"bytes":\#(request.body.readableBytes)}"#) }
        try await withTestServer(router: router, limits: limits) { server, port in
            try await withClient { client in
                let peer = Peer(host: "127.0.0.1", port: port)
                let size = 30 << 20
                let statuses = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<3 {
                        group.addTask {
                            let response = try await client.execute(ClientRequest(method: "POST", path: "/count", body: ByteBuffer(repeating: 1, count: size)),
                                                                    to: peer, timeout: .seconds(20))
                            return "\(response.status) \(String(buffer: response.body))"
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(statuses == Array(repeating: #"200 {"bytes":\#(size)}"#, count: 3))
                #expect(server.load.stats.openConnections == 1)
                #expect(server.load.stats.timeouts == 0)
            }
        }
    }

    /// The body clock stops while the server throttles: a body whose connection gets no window
    /// (the server-wide budget held by another connection) for longer than the body timeout is
    /// not answered 408, and completes once the budget frees; the same on HTTP/1.1, whose
    /// connection is not read from meanwhile.
    @Test func throttledBodiesDoNotTimeOut() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 256 * 1024
        limits.maxConnectionBodyBytes = 256 * 1024
        limits.connectionWindowBytes = 256 * 1024
        limits.maxBufferedBodyBytes = 400 * 1024
        limits.bodyTimeout = .seconds(1)
        var router = makeTestRouter()
        router.post("/count") { request in .json(.ok, #"{"bytes":\#(request.body.readableBytes)}"#) }
        try await withTestServer(router: router, limits: limits) { server, port in
            // HTTP/2: the first connection holds 200000 bytes of a 200005-byte body and sends the
            // rest a byte each 300 ms; the second is left no window for its 250000 bytes.
            let first = try RawConnection(port: port), second = try RawConnection(port: port)
            first.send(RawHTTP2.opening + RawHTTP2.request(stream: 1, method: "POST", path: "/count", endStream: false, fields: [("content-length", "200005")]))
            first.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: 1, payload: [UInt8](repeating: 1, count: 200_000)))
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 200_000 })
            let secondOutcome = Task {
                try await blocking { rawUploads(second, streams: [1], size: 250_000, declared: true, streamWindow: HTTPServerLimits().streamWindowBytes, seconds: 8) }
            }
            for i in 0..<5 {
                try await Task.sleep(nanoseconds: 300_000_000)
                first.send(RawHTTP2.frame(type: RawHTTP2.data, flags: i == 4 ? RawHTTP2.endStream : 0, stream: 1, payload: [1]))
            }
            let one = RawHTTP2.parse(await first.receive { RawHTTP2.parse($0).contains { $0.stream == 1 && $0.flags & RawHTTP2.endStream != 0 } })
            #expect(RawHTTP2.body(one, stream: 1) == #"{"bytes":200005}"#)
            let two = try await secondOutcome.value
            #expect(two[1]?.body == #"{"bytes":250000}"#, "\(two)")
            #expect(server.load.stats.timeouts == 0)

            // HTTP/1.1: the same, the second connection paused instead of throttled.
            let h1a = try RawConnection(port: port), h1b = try RawConnection(port: port)
            h1a.send("POST /count HTTP/1.1\r\nhost: x\r\ncontent-length: 250005\r\n\r\n")
            h1a.send([UInt8](repeating: 0x61, count: 250_000))
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 250_000 })
            h1b.send("POST /count HTTP/1.1\r\nhost: x\r\ncontent-length: 200000\r\n\r\n")
            let upload = Task { try await blocking { h1b.send([UInt8](repeating: 0x62, count: 200_000)) } }
            for _ in 0..<5 {
                try await Task.sleep(nanoseconds: 300_000_000)
                h1a.send([0x61])
            }
            let a = await h1a.receive { String(decoding: $0, as: UTF8.self).contains("}") }
            #expect(String(decoding: a, as: UTF8.self).hasSuffix(#"{"bytes":250005}"#))
            try await upload.value
            let b = await h1b.receive { String(decoding: $0, as: UTF8.self).contains("}") }
            #expect(String(decoding: b, as: UTF8.self).hasSuffix(#"{"bytes":200000}"#), "\(String(decoding: b, as: UTF8.self))")
            #expect(server.load.stats.timeouts == 0)
        }
    }

    /// A client with window that sends a byte every 100 ms never trips the no-progress timeout,
    /// but the minimum average rate (64 KiB/s after the body timeout) answers it 408.
    @Test func aTricklingBodyGets408FromTheMinimumRate() async throws {
        var limits = HTTPServerLimits()
        limits.bodyTimeout = .milliseconds(400)
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.opening + RawHTTP2.request(stream: 1, method: "POST", path: "/echo", endStream: false, fields: [("content-length", "1000")]))
            let answered = try await blocking { () -> Bool in
                var received: [UInt8] = []
                for _ in 0..<30 { // 3 s
                    connection.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: 1, payload: [1]))
                    received += connection.read(milliseconds: 100).bytes
                    if RawHTTP2.body(RawHTTP2.parse(received), stream: 1).contains("request_timeout") { return true }
                }
                return false
            }
            #expect(answered)
            #expect(server.load.stats.timeouts == 1)
            #expect(try await eventually { server.load.stats.bufferedBodyBytes == 0 })
            // HTTP/1.1 too.
            let h1 = try RawConnection(port: port)
            h1.send("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n")
            let reply = try await blocking { () -> String in
                var received: [UInt8] = []
                for _ in 0..<30 {
                    h1.send([0x61])
                    let r = h1.read(milliseconds: 100)
                    received += r.bytes
                    if r.closed { break }
                }
                return String(decoding: received, as: UTF8.self)
            }
            #expect(reply.hasPrefix("HTTP/1.1 408"), "\(reply)")
        }
    }

    /// A body buffer starts at what the first bytes need or what was declared, never more than
    /// 1 MiB: a declared 64 MiB with one byte sent allocates 1 MiB, not 64.
    @Test func bodyBuffersStartSmallWhateverIsDeclared() {
        let limits = HTTPServerLimits()
        #expect(limits.initialBodyCapacity(declared: 64 << 20, received: 1) == 1 << 20)
        #expect(limits.initialBodyCapacity(declared: 64 << 20, received: 0) == 1 << 20)
        #expect(limits.initialBodyCapacity(declared: 1000, received: 10) == 1000)
        #expect(limits.initialBodyCapacity(declared: nil, received: 16_384) == 16_384)
        #expect(limits.initialBodyCapacity(declared: 8 << 20, received: 2 << 20) == 2 << 20)
    }
}

/// What became of one raw upload stream: the response body the server sent, or its RST_STREAM code.
struct RawUploadOutcome: CustomStringConvertible {
    var body = ""
    var reset: UInt32?
    var sent = 0
    var description: String { "sent \(sent), reset \(reset.map(String.init) ?? "-"), body \(body.prefix(80))" }
}

/// Uploads `size` bytes on each of `streams` (POST /count) over a raw connection, interleaving
/// DATA within the connection and stream windows the server grants, and stops sending on a stream
/// once it is answered or reset. Returns when every stream is answered or reset, or after `seconds`.
func rawUploads(_ connection: RawConnection, streams: [UInt32], size: Int, declared: Bool, streamWindow: Int, seconds: Int) -> [UInt32: RawUploadOutcome] {
    connection.send(RawHTTP2.opening)
    for id in streams {
        connection.send(RawHTTP2.request(stream: id, method: "POST", path: "/count", endStream: false,
                                         fields: declared ? [("content-length", String(size))] : []))
    }
    var outcome = Dictionary(uniqueKeysWithValues: streams.map { ($0, RawUploadOutcome()) })
    var windows = Dictionary(uniqueKeysWithValues: streams.map { ($0, streamWindow) })
    var connectionWindow = 65_535, pending: [UInt8] = [], bodies: [UInt32: [UInt8]] = [:], done = Set<UInt32>()
    let chunk = [UInt8](repeating: 0x63, count: 16_384)
    let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds) * 1_000_000_000
    while done.count < streams.count && DispatchTime.now().uptimeNanoseconds < end {
        var progressed = true
        while progressed {
            progressed = false
            for id in streams where !done.contains(id) && outcome[id]!.reset == nil && outcome[id]!.sent < size {
                let n = min(chunk.count, connectionWindow, windows[id]!, size - outcome[id]!.sent)
                guard n > 0 else { continue }
                let last = outcome[id]!.sent + n == size
                connection.send(RawHTTP2.frame(type: RawHTTP2.data, flags: last ? RawHTTP2.endStream : 0, stream: id, payload: Array(chunk[0..<n])))
                connectionWindow -= n
                windows[id]! -= n
                outcome[id]!.sent += n
                progressed = true
            }
        }
        pending += connection.read(milliseconds: 5).bytes
        let frames = RawHTTP2.parse(pending)
        pending.removeFirst(frames.reduce(0) { $0 + 9 + $1.payload.count })
        connectionWindow += RawHTTP2.windowIncrements(frames, stream: 0)
        for id in streams { windows[id]! += RawHTTP2.windowIncrements(frames, stream: id) }
        for f in frames where outcome[f.stream] != nil {
            if f.type == RawHTTP2.data {
                bodies[f.stream, default: []] += f.payload
                if f.flags & RawHTTP2.endStream != 0 {
                    outcome[f.stream]!.body = String(decoding: bodies[f.stream]!, as: UTF8.self)
                    done.insert(f.stream)
                }
            } else if f.type == RawHTTP2.rstStream, f.payload.count == 4 {
                outcome[f.stream]!.reset = UInt32(f.payload[3]) | UInt32(f.payload[2]) << 8
                if outcome[f.stream]!.body.isEmpty { outcome[f.stream]!.body = String(decoding: bodies[f.stream] ?? [], as: UTF8.self) }
                done.insert(f.stream)
            } else if f.type == RawHTTP2.headers, f.flags & RawHTTP2.endStream != 0 {
                done.insert(f.stream)
            }
        }
    }

    return outcome
}
