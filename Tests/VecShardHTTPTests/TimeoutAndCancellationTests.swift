import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import VecShardHTTP

/// Connections and streams that stall are ended by timeouts; requests the client gives up on
/// stop their handlers; the server sheds load instead of queueing without bound.
@Suite struct TimeoutAndCancellationTests {
    static var shortTimeouts: HTTPServerLimits {
        var limits = HTTPServerLimits()
        limits.headerTimeout = .milliseconds(200)
        limits.bodyTimeout = .milliseconds(300)
        limits.idleTimeout = .milliseconds(400)
        return limits
    }

    private func elapsed(_ body: () async throws -> Void) async rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try await body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test func silentConnectionsAreClosedAfterTheHeaderTimeout() async throws {
        try await withTestServer(router: makeTestRouter(), limits: Self.shortTimeouts) { server, port in
            // Nothing at all (no preface, no TLS handshake, no request line).
            let silent = try RawConnection(port: port)
            var closed = false
            let seconds = try await elapsed { closed = try await blocking { silent.waitForClose(milliseconds: 3000) } }
            #expect(closed && seconds < 1.5, "closed \(closed) after \(seconds) s")
            // An HTTP/2 preface but no request: GOAWAY, then close.
            let preface = try RawConnection(port: port)
            preface.send(RawHTTP2.opening)
            let h2 = try await blocking { preface.read(milliseconds: 3000) }
            #expect(h2.closed && RawHTTP2.parse(h2.bytes).contains { $0.type == RawHTTP2.goaway })
            // A header block whose CONTINUATION never comes.
            let stalled = try RawConnection(port: port)
            stalled.send(RawHTTP2.opening + RawHTTP2.request(stream: 1, method: "GET", path: "/healthz", endStream: true, endHeaders: false, fields: []))
            let block = try await blocking { stalled.read(milliseconds: 3000) }
            #expect(block.closed && RawHTTP2.parse(block.bytes).contains { $0.type == RawHTTP2.goaway })
            // HTTP/1.1: half a request head.
            let h1 = try RawConnection(port: port)
            h1.send("GET /healthz HTTP/1.1\r\nhost: x\r\n")
            let half = try await blocking { h1.read(milliseconds: 3000) }
            #expect(half.closed && half.bytes.isEmpty)
            #expect(server.load.stats.timeouts >= 4)
            #expect(try await curl(["--http2-prior-knowledge", "http://127.0.0.1:\(port)/healthz"]).status == 200)
        }
    }

    @Test func aStalledBodyGets408AndOtherStreamsGoOn() async throws {
        var limits = HTTPServerLimits()
        limits.bodyTimeout = .milliseconds(300) // the others long: only the body may time out here
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.opening + RawHTTP2.request(stream: 1, method: "POST", path: "/echo", endStream: false, fields: []))
            connection.send(RawHTTP2.frame(type: RawHTTP2.data, flags: 0, stream: 1, payload: [UInt8](repeating: 1, count: 1000)))
            let frames = RawHTTP2.parse(await connection.receive { RawHTTP2.parse($0).contains { $0.type == RawHTTP2.rstStream && $0.stream == 1 } })
            #expect(RawHTTP2.body(frames, stream: 1).contains(#""code":"request_timeout""#))
            #expect(!frames.contains { $0.type == RawHTTP2.goaway })
            connection.send(RawHTTP2.request(stream: 3, method: "GET", path: "/healthz", endStream: true, fields: []))
            let next = RawHTTP2.parse(await connection.receive { RawHTTP2.parse($0).contains { $0.stream == 3 && $0.flags & RawHTTP2.endStream != 0 } })
            #expect(RawHTTP2.body(next, stream: 3) == #"{"status":"ok"}"#)
            #expect(server.load.stats.bufferedBodyBytes == 0)
            // HTTP/1.1: 408, then the connection closes.
            let h1 = try RawConnection(port: port)
            h1.send("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc")
            let reply = try await blocking { h1.read(milliseconds: 3000) }
            #expect(String(decoding: reply.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 408"))
            #expect(reply.closed)
        }
    }

    @Test func idleKeepAliveConnectionsAreClosed() async throws {
        try await withTestServer(router: makeTestRouter(), limits: Self.shortTimeouts) { _, port in
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.opening + RawHTTP2.request(stream: 1, method: "GET", path: "/healthz", endStream: true, fields: []))
            var seconds = 0.0
            var result: (bytes: [UInt8], closed: Bool) = ([], false)
            seconds = try await elapsed { result = try await blocking { connection.read(milliseconds: 3000) } }
            let frames = RawHTTP2.parse(result.bytes)
            #expect(RawHTTP2.body(frames, stream: 1) == #"{"status":"ok"}"#)
            let goaway = frames.first { $0.type == RawHTTP2.goaway }
            #expect(goaway.map { Array($0.payload[4..<8]) } == [0, 0, 0, 0]) // NO_ERROR
            #expect(result.closed && seconds >= 0.35 && seconds < 2, "closed \(result.closed) after \(seconds) s")
            let h1 = try RawConnection(port: port)
            h1.send("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            let reply = try await blocking { h1.read(milliseconds: 3000) }
            #expect(String(decoding: reply.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            #expect(reply.closed)
        }
    }

    @Test func connectionsOverTheLimitAreClosedAtOnce() async throws {
        var limits = HTTPServerLimits()
        limits.maxConnections = 2
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let first = try RawConnection(port: port), second = try RawConnection(port: port)
            first.send(RawHTTP2.opening)
            second.send(RawHTTP2.opening)
            #expect(try await eventually { server.load.stats.openConnections == 2 })
            let third = try RawConnection(port: port)
            #expect(try await blocking { third.waitForClose(milliseconds: 2000) })
            #expect(server.load.stats.refusedConnections == 1)
            first.shutdownBoth()
            #expect(try await eventually { server.load.stats.openConnections == 1 })
            #expect(try await curl(["--http2-prior-knowledge", "http://127.0.0.1:\(port)/healthz"]).status == 200)
            _ = second
        }
    }

    /// HEADERS + DATA + RST_STREAM, many times over several connections: every handler observes
    /// cancellation, none is left running, and the concurrent-request count returns to 0.
    @Test func resetStreamsCancelTheirHandlers() async throws {
        let started = NIOLockedValueBox(0), cancelled = NIOLockedValueBox(0)
        var router = makeTestRouter()
        router.post("/spin") { _ in
            started.withLockedValue { $0 += 1 }
            while !Task.isCancelled { try? await Task.sleep(nanoseconds: 1_000_000) }
            cancelled.withLockedValue { $0 += 1 }
            return .json(.ok, "{}")
        }
        try await withTestServer(router: router) { server, port in
            let connections = try (0..<4).map { _ in try RawConnection(port: port) }
            for c in connections {
                c.send(RawHTTP2.opening)
                for i in 0..<25 {
                    let id = UInt32(1 + 2 * i)
                    c.send(RawHTTP2.request(stream: id, method: "POST", path: "/spin", endStream: false, fields: []))
                    c.send(RawHTTP2.frame(type: RawHTTP2.data, flags: RawHTTP2.endStream, stream: id, payload: [1, 2, 3]))
                }
            }
            #expect(try await eventually { started.withLockedValue { $0 } == 100 })
            for c in connections { for i in 0..<25 { c.send(RawHTTP2.reset(stream: UInt32(1 + 2 * i))) } }
            #expect(try await eventually { cancelled.withLockedValue { $0 } == 100 }, "\(cancelled.withLockedValue { $0 }) of 100 handlers cancelled")
            #expect(try await eventually { server.load.stats.requestsInFlight == 0 })
            // A closed HTTP/1.1 connection cancels its handler too.
            let h1 = try RawConnection(port: port)
            h1.send("POST /spin HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nx")
            #expect(try await eventually { started.withLockedValue { $0 } == 101 })
            h1.shutdownBoth()
            #expect(try await eventually { cancelled.withLockedValue { $0 } == 101 })
            #expect(try await eventually { server.load.stats.requestsInFlight == 0 })
            // The connections still serve.
            connections[0].send(RawHTTP2.request(stream: 51, method: "GET", path: "/healthz", endStream: true, fields: []))
            let frames = RawHTTP2.parse(await connections[0].receive { RawHTTP2.parse($0).contains { $0.stream == 51 && $0.flags & RawHTTP2.endStream != 0 } })
            #expect(RawHTTP2.body(frames, stream: 51) == #"{"status":"ok"}"#)
        }
    }

    @Test func requestsOverTheConcurrencyLimitAreShedWith503() async throws {
        var limits = HTTPServerLimits()
        limits.maxConcurrentRequests = 2
        try await withTestServer(router: makeTestRouter(), limits: limits) { server, port in
            let connection = try RawConnection(port: port)
            connection.send(RawHTTP2.opening)
            for i in 0..<4 { connection.send(RawHTTP2.request(stream: UInt32(1 + 2 * i), method: "GET", path: "/slow?ms=300", endStream: true, fields: [])) }
            let frames = RawHTTP2.parse(await connection.receive { bytes in
                Set(RawHTTP2.parse(bytes).filter { $0.type == RawHTTP2.data && $0.flags & RawHTTP2.endStream != 0 }.map(\.stream)).count == 4
            })
            let bodies = (0..<4).map { RawHTTP2.body(frames, stream: UInt32(1 + 2 * $0)) }
            #expect(bodies.filter { $0.contains("slept_ms") }.count == 2)
            #expect(bodies.filter { $0.contains(#""code":"overloaded""#) }.count == 2)
            #expect(server.load.stats.shedRequests == 2)
            #expect(try await eventually { server.load.stats.requestsInFlight == 0 })
            let h1 = try await run("/usr/bin/curl", ["-s", "-i", "--http1.1", "http://127.0.0.1:\(port)/slow?ms=1"])
            #expect(h1.stdout.contains("200 OK"))
        }
    }

    /// A handler under `HandlerDeadline` that sleeps 5 s: 504 after about 100 ms, and the
    /// handler is cancelled.
    @Test func theDeadlineAnswers504AndCancelsTheHandler() async throws {
        let cancelled = NIOLockedValueBox(false)
        var router = makeTestRouter()
        router.get("/deadline") { _ in
            try await HandlerDeadline.run(until: .now + .milliseconds(100), onTimeout: { HTTPError.deadlineExceeded(.milliseconds(100)) }) {
                do { try await Task.sleep(nanoseconds: 5_000_000_000) } catch { cancelled.withLockedValue { $0 = true } }
                return ServerResponse.json(.ok, "{}")
            }
        }
        try await withTestServer(router: router) { server, port in
            var r: (status: Int, body: String) = (0, "")
            let seconds = try await elapsed { r = try await curl(["--http2-prior-knowledge", "http://127.0.0.1:\(port)/deadline"]) }
            #expect(r.status == 504 && r.body.contains(#""code":"deadline_exceeded""#))
            #expect(seconds < 1.5, "answered after \(seconds) s")
            #expect(try await eventually { cancelled.withLockedValue { $0 } })
            #expect(try await eventually { server.load.stats.requestsInFlight == 0 })
        }
    }
}
