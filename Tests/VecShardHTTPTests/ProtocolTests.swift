import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
@testable import VecShardHTTP

@Suite struct ProtocolTests {
    @Test func sameResponseOverHTTP1CurlHTTP2CurlAndOwnClient() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            let url = "http://127.0.0.1:\(port)/items/abc"
            let h1 = try await curl(["--http1.1", url])
            let h2 = try await curl(["--http2-prior-knowledge", url])
            let own = try await withClient { client in
                try await client.execute(ClientRequest(path: "/items/abc"), to: Peer(host: "127.0.0.1", port: port), timeout: .seconds(5))
            }
            #expect(h1.status == 200 && h2.status == 200 && own.status == 200)
            #expect(h1.body == #"{"id":"abc"}"#)
            #expect(h2.body == h1.body)
            #expect(own.body.string == h1.body)
            #expect(own.headers.first(name: "content-type") == "application/json")
        }
    }

    @Test func curlReportsTheNegotiatedVersion() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            let v1 = try await run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_version}", "--http1.1", "http://127.0.0.1:\(port)/healthz"])
            let v2 = try await run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_version}", "--http2-prior-knowledge", "http://127.0.0.1:\(port)/healthz"])
            #expect(v1.stdout == "1.1")
            #expect(v2.stdout == "2")
        }
    }

    @Test func http1KeepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            let url = "http://127.0.0.1:\(port)/healthz"
            let result = try await run("/usr/bin/curl", ["-s", "-v", "--http1.1", url, url, url])
            #expect(result.stdout == String(repeating: #"{"status":"ok"}"#, count: 3))
            #expect(result.stderr.contains("Re-using existing connection"))
        }
    }

    @Test func multiMegabyteBodiesBothWaysOverHTTP2() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            try await withClient { client in
                var payload = ByteBuffer()
                for i in 0..<(12 << 20) / 4 { payload.writeInteger(UInt32(truncatingIfNeeded: i &* 2654435761)) }
                let response = try await client.execute(ClientRequest(method: "POST", path: "/echo", body: payload),
                                                        to: Peer(host: "127.0.0.1", port: port), timeout: .seconds(30))
                #expect(response.status == 200)
                #expect(response.body == payload)
            }
        }
    }

    @Test func manyConcurrentStreamsOnOneConnection() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            try await withClient { client in
                let peer = Peer(host: "127.0.0.1", port: port)
                let ids = try await withThrowingTaskGroup(of: String.self) { group in
                    for i in 0..<500 {
                        group.addTask {
                            try await client.execute(ClientRequest(path: "/items/\(i)"), to: peer, timeout: .seconds(10)).body.string
                        }
                    }
                    return try await group.reduce(into: Set<String>()) { $0.insert($1) }
                }
                #expect(ids.count == 500)
                #expect(ids.contains(#"{"id":"499"}"#))
            }
        }
    }

    /// Streams are recycled within a connection: constant answers (which never decode request
    /// headers) and handlers that read headers alternate, and each handler sees exactly the
    /// headers of its own request.
    @Test func headersOfEachRequestReachItsHandlerWhileConstantRoutesInterleave() async throws {
        var router = Router()
        router.add("GET", "/live", .constant(.json(.ok, #"{"status":"ok"}"#)))
        router.get("/headers") { request in
            let names = request.headers.map(\.name).filter { $0.hasPrefix("x-") }.sorted()
            let text = names.map { "\($0)=\(request.headers.first(name: $0) ?? "")" }.joined(separator: ";")
            return .text(.ok, text)
        }
        try await withTestServer(router: router) { _, port in
            try await withClient { client in
                let peer = Peer(host: "127.0.0.1", port: port)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<300 {
                        group.addTask {
                            if i % 2 == 0 {
                                let r = try await client.execute(ClientRequest(path: "/live", headers: ["x-ignored": "\(i)"]), to: peer, timeout: .seconds(10))
                                #expect(r.status == 200 && r.body.string == #"{"status":"ok"}"#)
                            } else {
                                var headers: HTTPHeaders = ["x-id": "\(i)"]
                                if i % 3 == 0 { headers.add(name: "x-three", value: String(repeating: "t", count: i)) }
                                let r = try await client.execute(ClientRequest(path: "/headers", headers: headers), to: peer, timeout: .seconds(10))
                                let expected = "x-id=\(i)" + (i % 3 == 0 ? ";x-three=" + String(repeating: "t", count: i) : "")
                                #expect(r.status == 200 && r.body.string == expected)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test func streamedResponseWithTrailers() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            let own = try await withClient { client in
                try await client.execute(ClientRequest(path: "/stream?chunks=5"), to: Peer(host: "127.0.0.1", port: port), timeout: .seconds(5))
            }
            #expect(own.body.string == (0..<5).map { "chunk \($0)\n" }.joined())
            #expect(own.trailers.first(name: "x-checksum") == "done")
            let h1 = try await curl(["--http1.1", "http://127.0.0.1:\(port)/stream?chunks=3"])
            #expect(h1.body == (0..<3).map { "chunk \($0)\n" }.joined())
        }
    }

    @Test func clientDeadlineResetsTheStreamAndTheConnectionStaysUsable() async throws {
        try await withTestServer(router: makeTestRouter()) { _, port in
            try await withClient { client in
                let peer = Peer(host: "127.0.0.1", port: port)
                await #expect(throws: HTTPClientError.self) {
                    _ = try await client.execute(ClientRequest(path: "/slow?ms=2000"), to: peer, timeout: .milliseconds(100))
                }
                let ok = try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5))
                #expect(ok.status == 200)
            }
        }
    }

    @Test func clientReconnectsAfterTheServerRestarts() async throws {
        try await withClient { client in
            let router = makeTestRouter()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let first = HTTPServer(configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0), router: router, group: group)
            try await first.start()
            let port = first.port
            let peer = Peer(host: "127.0.0.1", port: port)
            #expect(try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5)).status == 200)
            await first.shutdown(gracePeriod: .seconds(1))
            // While the server is down the request fails fast with a connect error.
            await #expect(throws: HTTPClientError.self) {
                _ = try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(2))
            }
            let second = HTTPServer(configuration: HTTPServerConfiguration(host: "127.0.0.1", port: port), router: router, group: group)
            try await second.start()
            #expect(try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5)).status == 200)
            await second.shutdown(gracePeriod: .seconds(1))
            try await group.shutdownGracefully()
        }
    }
}
