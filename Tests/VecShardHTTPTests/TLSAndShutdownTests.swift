import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import VecShardHTTP

@Suite struct TLSTests {
    /// A self-signed certificate for 127.0.0.1/localhost, made by the openssl CLI.
    private func makeCertificate(in dir: URL) async throws -> (cert: String, key: String) {
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let result = try await run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                  "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                                                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        #expect(result.status == 0, "openssl: \(result.stderr)")
        return (cert, key)
    }

    @Test func alpnPicksH2AndCurlWorksOverBothVersions() async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cert, key) = try await makeCertificate(in: dir)
        let tls = try TLSContext(certificateChainFile: cert, privateKeyFile: key)
        try await withTestServer(router: makeTestRouter(), tls: tls) { _, port in
            let url = "https://127.0.0.1:\(port)/items/tls"
            let h2 = try await run("/usr/bin/curl", ["-sk", "--http2", "-w", "\n%{http_version}", url])
            #expect(h2.stdout == "{\"id\":\"tls\"}\n2") // curl asked for h2 through ALPN and got it
            let h1 = try await run("/usr/bin/curl", ["-sk", "--http1.1", "-w", "\n%{http_version}", url])
            #expect(h1.stdout == "{\"id\":\"tls\"}\n1.1")
            let verbose = try await run("/usr/bin/curl", ["-skv", "--http2", "-o", "/dev/null", url])
            #expect(verbose.stderr.contains("ALPN: server accepted h2"))
            // The project's client, verifying the certificate against it as the CA.
            let clientTLS = try TLSContext(clientVerifyingPeer: true, caFile: cert)
            let own = try await withClient(tls: clientTLS) { client in
                try await client.execute(ClientRequest(path: "/items/tls"), to: Peer(host: "127.0.0.1", port: port), timeout: .seconds(5))
            }
            #expect(own.status == 200)
            #expect(own.body.string == #"{"id":"tls"}"#)
        }
    }

    @Test func plaintextClientAgainstTLSPortIsRefusedAndServerKeepsServing() async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cert, key) = try await makeCertificate(in: dir)
        try await withTestServer(router: makeTestRouter(), tls: try TLSContext(certificateChainFile: cert, privateKeyFile: key)) { _, port in
            let plain = try await curl(["--http1.1", "http://127.0.0.1:\(port)/healthz"])
            #expect(plain.status != 200)
            #expect(try await run("/usr/bin/curl", ["-sk", "https://127.0.0.1:\(port)/healthz"]).stdout == #"{"status":"ok"}"#)
        }
    }

    @Test func missingCertificateFileIsAClearError() {
        #expect(throws: TLSError.self) { _ = try TLSContext(certificateChainFile: "/nonexistent/cert.pem", privateKeyFile: "/nonexistent/key.pem") }
    }
}

@Suite struct ShutdownTests {
    @Test func inFlightRequestsCompleteAndNewConnectionsAreRefused() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = HTTPServer(configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0), router: makeTestRouter(), group: group)
        try await server.start()
        let port = server.port
        try await withClient { client in
            let peer = Peer(host: "127.0.0.1", port: port)
            _ = try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5)) // connection is open
            let curlProcess = Process()
            curlProcess.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curlProcess.arguments = ["-s", "--http1.1", "http://127.0.0.1:\(port)/slow?ms=700"]
            let curlOut = Pipe()
            curlProcess.standardOutput = curlOut
            try curlProcess.run()
            async let h2InFlight = client.execute(ClientRequest(path: "/slow?ms=700"), to: peer, timeout: .seconds(10))
            try await Task.sleep(nanoseconds: 250_000_000)
            let stop = Task { await server.shutdown(gracePeriod: .seconds(5)) }
            try await Task.sleep(nanoseconds: 100_000_000)
            // The listener is closed: a new connection is refused.
            #expect(throws: (any Error).self) { _ = try RawConnection(port: port) }
            let h2 = try await h2InFlight
            #expect(h2.status == 200)
            #expect(h2.body.string == #"{"slept_ms":700}"#)
            curlProcess.waitUntilExit()
            #expect(String(decoding: curlOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == #"{"slept_ms":700}"#)
            await stop.value
        }
        try await group.shutdownGracefully()
    }
}
