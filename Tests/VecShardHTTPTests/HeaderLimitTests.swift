import Foundation
import NIOCore
import Testing
@testable import VecShardHTTP

/// Header blocks over the limit are answered 431 on their stream (HTTP/2) or connection
/// (HTTP/1.1) rather than ending the connection, up to the size where nghttp2's HPACK decoder
/// itself refuses a field.
@Suite struct HeaderLimitTests {
    private func h2Answer(port: Int, fieldBytes: Int, fields: Int = 1) async throws -> (frames: [RawHTTP2.Frame], closed: Bool) {
        let connection = try RawConnection(port: port)
        connection.send(RawHTTP2.opening + RawHTTP2.request(stream: 1, method: "GET", path: "/healthz", endStream: true,
                                                            fields: (0..<fields).map { ("x-big-\($0)", String(repeating: "a", count: fieldBytes)) }))
        connection.send(RawHTTP2.request(stream: 3, method: "GET", path: "/healthz", endStream: true, fields: []))
        let reply = try await blocking { connection.read(milliseconds: 500) }
        return (RawHTTP2.parse(reply.bytes), reply.closed)
    }

    @Test func fieldsUpTo64KiBGet431OnTheirStreamOverHTTP2() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            for size in [20_000, 60_000, HTTP2ServerHandler.largestRefusableFieldBytes] {
                let (frames, closed) = try await h2Answer(port: port, fieldBytes: size)
                #expect(RawHTTP2.body(frames, stream: 1).contains(#""code":"header_fields_too_large""#), "field of \(size) bytes")
                #expect(RawHTTP2.body(frames, stream: 3) == #"{"status":"ok"}"#, "the next stream after a field of \(size) bytes")
                #expect(!closed && !frames.contains { $0.type == RawHTTP2.goaway })
            }
            // Many fields, the block far over the limit (one frame of 300 KB): 431 as well.
            let (many, manyClosed) = try await h2Answer(port: port, fieldBytes: 50_000, fields: 6)
            #expect(RawHTTP2.body(many, stream: 1).contains(#""code":"header_fields_too_large""#))
            #expect(RawHTTP2.body(many, stream: 3) == #"{"status":"ok"}"#)
            #expect(!manyClosed)
            // Beyond it nghttp2's HPACK decoder fails the connection (COMPRESSION_ERROR): documented.
            let (frames, closed) = try await h2Answer(port: port, fieldBytes: HTTP2ServerHandler.largestRefusableFieldBytes + 1)
            let goaway = frames.first { $0.type == RawHTTP2.goaway }
            #expect(closed && goaway.map { Array($0.payload[4..<8]) } == [0, 0, 0, 9]) // COMPRESSION_ERROR
        }
    }

    @Test func headsOverTheParsersLimitGet431OverHTTP1() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            for size in [20_000, 100_000] {
                let connection = try RawConnection(port: port)
                connection.send("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: \(String(repeating: "a", count: size))\r\n\r\n")
                let reply = try await blocking { connection.read(milliseconds: 2000) }
                let text = String(decoding: reply.bytes, as: UTF8.self)
                #expect(text.hasPrefix("HTTP/1.1 431") && text.contains("header_fields_too_large"), "field of \(size) bytes: \(text.prefix(60))")
                #expect(reply.closed)
            }
        }
    }
}
