import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing
import VecShardHTTP
@testable import VecShardServer
import VecShardPrimitives
import VecShardSchema
import VecShardStorage

/// Runs the service on an ephemeral port under a ServiceGroup and shuts it down gracefully after.
func withService<T>(shards: Int = 4, dataDirectory: String? = nil, access: AccessPolicy = AccessPolicy(),
                    role: ServiceRole = .standalone, storage: ((inout StorageOptions) -> Void)? = nil,
                    configure: (inout ServiceConfiguration) -> Void = { _ in },
                    _ body: (VecShardService, Peer) async throws -> T) async throws -> T {
    let dataDir = dataDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-svc-\(UUID().uuidString)").path
    defer { if dataDirectory == nil { try? FileManager.default.removeItem(atPath: dataDir) } }
    var configuration = ServiceConfiguration()
    configuration.port = 0
    configuration.dataDirectory = dataDir
    configuration.shutdownGracePeriod = .seconds(2)
    configuration.shardCount = shards
    configuration.access = access
    configuration.role = role
    storage?(&configuration.storage)
    configure(&configuration)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let service = try VecShardService(configuration: configuration, group: group)
    let serviceGroup = ServiceGroup(services: [service], logger: Logger(label: "test"))
    let running = Task { try await serviceGroup.run() }
    let port = try await service.waitUntilListening()
    let result: Result<T, any Error>
    do { result = .success(try await body(service, Peer(host: "127.0.0.1", port: port))) } catch { result = .failure(error) }
    await serviceGroup.triggerGracefulShutdown()
    try await running.value
    try await group.shutdownGracefully()
    return try result.get()
}

func withClient<T>(_ body: (HTTP2Client) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let client = HTTP2Client(group: group)
    let result: Result<T, any Error>
    do { result = .success(try await body(client)) } catch { result = .failure(error) }
    await client.shutdown()
    try await group.shutdownGracefully()
    return try result.get()
}

@Suite struct ServiceTests {
    /// `x-request-timeout-ms` in the standalone role (in-process shards, no gRPC deadline to
    /// carry it): a search that would take 5 s is answered 504 `deadline_exceeded` at about its
    /// deadline, and the searches are cancelled (the concurrent-request count returns to 0).
    @Test func theRequestDeadlineHoldsInTheStandaloneRole() async throws {
        try await withService(shards: 2, configure: { $0.injectedSearchDelay = .seconds(5) }) { service, peer in
            try await withClient { client in
                let created = try await client.execute(ClientRequest(method: "PUT", path: "/v1/collections/d",
                                                                     body: ByteBuffer(string: #"{"dimension":2,"metric":"l2"}"#)),
                                                       to: peer, timeout: .seconds(10))
                #expect(created.status == 200)
                let start = ContinuousClock.now
                let late = try await client.execute(ClientRequest(method: "POST", path: "/v1/collections/d/search", headers: ["x-request-timeout-ms": "100"],
                                                                  body: ByteBuffer(string: #"{"vector":[1,2],"k":1}"#)),
                                                    to: peer, timeout: .seconds(10))
                let took = ContinuousClock.now - start
                #expect(late.status == 504, "\(String(buffer: late.body))")
                #expect(String(buffer: late.body).contains(#""code":"deadline_exceeded""#))
                #expect(took < .milliseconds(1500), "answered after \(took)")
                #expect(service.httpStats.requestsInFlight <= 1) // this one may still be finishing its answer
            }
        }
    }

    @Test func probesAnswer() async throws {
        try await withService { _, peer in
            try await withClient { client in
                let health = try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5))
                #expect(health.status == 200)
                #expect(String(buffer: health.body) == #"{"status":"ok"}"#)
                let ready = try await client.execute(ClientRequest(path: "/readyz"), to: peer, timeout: .seconds(5))
                #expect(ready.status == 200)
                #expect(String(buffer: ready.body) == #"{"status":"ready"}"#)
            }
        }
    }

    @Test func metricsCountRequestsByRouteAndStatusWithLatencyHistograms() async throws {
        try await withService { _, peer in
            try await withClient { client in
                for _ in 0..<3 { _ = try await client.execute(ClientRequest(path: "/healthz"), to: peer, timeout: .seconds(5)) }
                _ = try await client.execute(ClientRequest(path: "/nowhere"), to: peer, timeout: .seconds(5))
                let metrics = try await client.execute(ClientRequest(path: "/metrics"), to: peer, timeout: .seconds(5))
                #expect(metrics.status == 200)
                #expect(metrics.headers.first(name: "content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: metrics.body)
                #expect(text.contains(#"vecshard_http_requests_total{method="GET",route="/healthz",status="200"} 3"#))
                #expect(text.contains(#"vecshard_http_requests_total{method="GET",route="unmatched",status="404"} 1"#))
                #expect(text.contains(#"vecshard_http_request_duration_seconds_bucket{method="GET",route="/healthz",status="200",le="0.0001"}"#))
                #expect(text.contains(#"vecshard_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 3"#))
                #expect(text.contains("# TYPE vecshard_http_open_connections gauge\nvecshard_http_open_connections 1\n"))
                #expect(text.contains("vecshard_http_requests_in_flight 1\n")) // the /metrics request itself
                #expect(text.contains("vecshard_http_shed_requests_total 0\n"))
            }
        }
    }

    @Test func mismatchedTLSOptionsAreAClearError() {
        var configuration = ServiceConfiguration()
        configuration.tlsCertificateFile = "/tmp/cert.pem"
        #expect(throws: ConfigurationError.self) { _ = try VecShardService(configuration: configuration) }
    }
}
