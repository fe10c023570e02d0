import Foundation
import NIOCore
import Testing
@testable import VecShardHTTP

/// Each bad input gets a clear answer and the server keeps serving other connections.
@Suite struct BadInputTests {
    private func stillServes(_ port: Int) async throws {
        #expect(try await curl(["--http1.1", "http://127.0.0.1:\(port)/healthz"]).status == 200)
        #expect(try await curl(["--http2-prior-knowledge", "http://127.0.0.1:\(port)/healthz"]).status == 200)
    }

    @Test func bytesThatAreNeitherPrefaceNorHTTP1Get400() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            let connection = try RawConnection(port: port)
            connection.send([0x16, 0x03, 0x01, 0x00, 0xff] + Array("\u{01}garbage\r\n\r\n".utf8))
            let reply = String(decoding: await connection.receive { _ in false }, as: UTF8.self) // server closes
            #expect(reply.hasPrefix("HTTP/1.1 400"))
            #expect(reply.contains(#""code":"bad_request""#))
            #expect(reply.contains("HTTP/1.1 and HTTP/2"))
            try await stillServes(port)
        }
    }

    @Test func oversizedHeaderBlockGets431() async throws {
        var limits = HTTPServerLimits()
        limits.maxHeaderListBytes = 8 * 1024
        try await withTestServer(router: makeTestRouter(), limits: limits) { _, port in
            let big = "x-big: " + String(repeating: "a", count: 10_000)
            let h1 = try await curl(["--http1.1", "-H", big, "http://127.0.0.1:\(port)/healthz"])
            #expect(h1.status == 431)
            #expect(h1.body.contains("header_fields_too_large"))
            let h2 = try await curl(["--http2-prior-knowledge", "-H", big, "http://127.0.0.1:\(port)/healthz"])
            #expect(h2.status == 431)
            try await withClient { client in
                let peer = Peer(host: "127.0.0.1", port: port)
                let rejected = try await client.execute(ClientRequest(path: "/healthz", headers: ["x-big": String(repeating: "b", count: 10_000)]),
                                                        to: peer, timeout: .seconds(5))
                #expect(rejected.status == 431)
                #expect(rejected.body.string.contains("8192 bytes"))
                // Same connection, next stream: unaffected.
                #expect(try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5)).status == 200)
            }
            try await stillServes(port)
        }
    }

    @Test func bodyOverTheLimitGets413() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 1 << 20
        try await withTestServer(router: makeTestRouter(), limits: limits) { _, port in
            let dir = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = dir.appendingPathComponent("big.bin")
            try Data(count: 2 << 20).write(to: file)
            let h1 = try await curl(["--http1.1", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(port)/echo"])
            #expect(h1.status == 413)
            #expect(h1.body.contains("payload_too_large"))
            let h2 = try await curl(["--http2-prior-knowledge", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(port)/echo"])
            #expect(h2.status == 413)
            try await withClient { client in
                let peer = Peer(host: "127.0.0.1", port: port)
                let big = try await client.execute(ClientRequest(method: "POST", path: "/echo", body: ByteBuffer(repeating: 7, count: 2 << 20)),
                                                   to: peer, timeout: .seconds(10))
                #expect(big.status == 413)
                #expect(big.body.string.contains("1048576 bytes"))
                let small = try await client.execute(ClientRequest(method: "POST", path: "/echo", body: ByteBuffer(repeating: 7, count: 1000)),
                                                     to: peer, timeout: .seconds(10))
                #expect(small.status == 200 && small.body.readableBytes == 1000)
            }
            try await stillServes(port)
        }
    }

    @Test func bodyOverTheLimitWithoutContentLengthIsCutOffOverHTTP2() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 64 * 1024
        try await withTestServer(router: makeTestRouter(), limits: limits) { _, port in
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.preface + RawHTTP2.frame(type: RawHTTP2.settings, flags: 0, stream: 0, payload: []))
            connection.send(RawHTTP2.request(stream: 1, method: "POST", path: "/echo", endStream: false))
            for _ in 0..<5 { connection.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: 1, payload: [UInt8](repeating: 1, count: 16_000))) }
            let frames = RawHTTP2.parse(await connection.receive { bytes in
                RawHTTP2.parse(bytes).contains { $0.type == RawHTTP2.rstStream && $0.stream == 1 }
            })
            let body = frames.filter { $0.type == RawHTTP2.data && $0.stream == 1 }.flatMap(\.payload)
            #expect(String(decoding: body, as: UTF8.self).contains("payload_too_large"))
            let reset = frames.first { $0.type == RawHTTP2.rstStream && $0.stream == 1 }
            #expect(reset?.payload == [0, 0, 0, 0]) // NO_ERROR: "stop sending, the answer is complete"
            try await stillServes(port)
        }
    }

    @Test func unknownPathAndWrongMethodOverBothVersions() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            for version in ["--http1.1", "--http2-prior-knowledge"] {
                let missing = try await curl([version, "http://127.0.0.1:\(port)/no/such/path"])
                #expect(missing.status == 404)
                #expect(missing.body.contains(#""code":"not_found""#))
                let wrong = try await curl([version, "-X", "DELETE", "http://127.0.0.1:\(port)/healthz"])
                #expect(wrong.status == 405)
                #expect(wrong.body.contains("allowed: GET"))
            }
        }
    }

    @Test func streamResetMidBodyLeavesTheConnectionWorking() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.preface + RawHTTP2.frame(type: RawHTTP2.settings, flags: 0, stream: 0, payload: []))
            connection.send(RawHTTP2.request(stream: 1, method: "POST", path: "/echo", endStream: false))
            connection.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: 1, payload: [UInt8](repeating: 9, count: 5000)))
            connection.send(RawHTTP2.frame(type: RawHTTP2.rstStream, flags: 0, stream: 1, payload: [0, 0, 0, 8])) // CANCEL
            connection.send(RawHTTP2.request(stream: 3, method: "GET", path: "/healthz", endStream: true))
            let frames = RawHTTP2.parse(await connection.receive { bytes in
                RawHTTP2.parse(bytes).contains { $0.type == RawHTTP2.data && $0.stream == 3 && $0.flags & RawHTTP2.endStream != 0 }
            })
            let body = frames.filter { $0.type == RawHTTP2.data && $0.stream == 3 }.flatMap(\.payload)
            #expect(String(decoding: body, as: UTF8.self) == #"{"status":"ok"}"#)
            #expect(!frames.contains { $0.type == RawHTTP2.goaway })
            #expect(!frames.contains { $0.stream == 1 && $0.type == RawHTTP2.data })
        }
    }

    @Test func streamsBeyondTheConcurrencyLimitAreRefusedOthersComplete() async throws {
        var limits = HTTPServerLimits()
        limits.maxConcurrentStreams = 4
        try await withTestServer(router: makeTestRouter(), limits: limits) { _, port in
            // A client that opens streams before it has seen the server's SETTINGS (the usual
            // race): those over the limit are refused one by one, the others complete.
            let connection = try RawConnection(port: port)
            var opening = RawHTTP2.preface + RawHTTP2.frame(type: RawHTTP2.settings, flags: 0, stream: 0, payload: [])
            for i in 0..<6 { opening += RawHTTP2.request(stream: UInt32(1 + 2 * i), method: "GET", path: "/slow?ms=300", endStream: true) }
            connection.send(opening)
            let frames = RawHTTP2.parse(await connection.receive { bytes in
                let f = RawHTTP2.parse(bytes)
                let finished = Set(f.filter { ($0.type == RawHTTP2.data && $0.flags & RawHTTP2.endStream != 0) || $0.type == RawHTTP2.rstStream }.map(\.stream))
                return finished.count == 6
            })
            let refused = frames.filter { $0.type == RawHTTP2.rstStream }
            let answered = Set(frames.filter { $0.type == RawHTTP2.data && $0.flags & RawHTTP2.endStream != 0 }.map(\.stream))
            #expect(answered == [1, 3, 5, 7])
            #expect(Set(refused.map(\.stream)) == [9, 11])
            #expect(refused.allSatisfy { $0.payload == [0, 0, 0, 7] }) // REFUSED_STREAM: safe to retry
            #expect(!frames.contains { $0.type == RawHTTP2.goaway })
            try await stillServes(port)

            // A client that acknowledged the limit and breaks it anyway commits a protocol
            // violation: nghttp2 ends that connection with GOAWAY; other connections keep working.
            let violator = try RawConnection(port: port)
            violator.send(RawHTTP2.preface + RawHTTP2.frame(type: RawHTTP2.settings, flags: 0, stream: 0, payload: []))
            _ = await violator.receive { RawHTTP2.parse($0).contains { $0.type == RawHTTP2.settings && $0.flags & RawHTTP2.ack == 0 } }
            var burst = RawHTTP2.frame(type: RawHTTP2.settings, flags: RawHTTP2.ack, stream: 0, payload: [])
            for i in 0..<6 { burst += RawHTTP2.request(stream: UInt32(1 + 2 * i), method: "GET", path: "/slow?ms=300", endStream: true) }
            violator.send(burst)
            let violatorFrames = RawHTTP2.parse(await violator.receive { bytes in RawHTTP2.parse(bytes).contains { $0.type == RawHTTP2.goaway } })
            let goaway = violatorFrames.first { $0.type == RawHTTP2.goaway }
            #expect(goaway.map { Array($0.payload[4..<8]) } == [0, 0, 0, 1]) // PROTOCOL_ERROR
            try await stillServes(port)
        }
        // A well-behaved client (ours) queues instead and every request succeeds.
        try await withTestServer(router: makeTestRouter(), limits: limits) { _, port in
            try await withClient { client in
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<20 {
                        group.addTask { try await client.execute(ClientRequest(path: "/slow?ms=20"), to: Peer(host: "127.0.0.1", port: port), timeout: .seconds(10)).status }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses == Array(repeating: 200, count: 20))
            }
        }
    }
}
