import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing
import VecShardHTTP
@testable import VecShardServer

/// `openapi.yaml` is the contract of the REST API: it must be a valid OpenAPI 3.1 document, and
/// the real service must answer what it says. Python tools (scripts/requirements-test.txt, installed
/// by scripts/bootstrap.sh): openapi-spec-validator checks the document, schemathesis generates
/// requests from it (valid ones, boundary values and invalid ones) against the service running
/// in-process and checks every answer: no 5xx, and status, content type and body as documented.
@Suite(.serialized) struct OpenAPITests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let spec = repositoryRoot.appendingPathComponent("openapi.yaml").path

    @Test func specIsValidOpenAPI31() async throws {
        let script = """
            import sys
            from openapi_spec_validator import validate
            from openapi_spec_validator.readers import read_from_filename
            spec, _ = read_from_filename(sys.argv[1])
            assert spec["openapi"].startswith("3.1"), spec["openapi"]
            validate(spec)
            print("valid")
            """
        let result = try await runTool(["python3", "-c", script, Self.spec], timeout: 60)
        #expect(result.status == 0 && result.stdout.contains("valid"),
                "openapi-spec-validator refused openapi.yaml (install it with scripts/bootstrap.sh):\n\(result.stdout)\n\(result.stderr)")
    }

    /// Every operation of the spec, with generated requests: explicit examples, boundary values
    /// and invalid inputs (coverage), then random valid and invalid inputs (fuzzing). A fixed
    /// seed keeps the run reproducible; the number of cases per operation bounds its time.
    @Test func serviceAnswersAsTheSpecSays() async throws {
        try await withSpecService { peer in
            // The collection the spec's examples name (`books`, 4 dimensions, cosine), with points.
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                let created = try await api.call("PUT", "/v1/collections/books", ["dimension": 4, "metric": "cosine", "index": ["type": "hnsw"]])
                #expect(created.status == 200, "\(created.json)")
                let points: [[String: Any]] = [
                    ["id": "a1", "vector": [0.1, 0.2, 0.3, 0.4], "metadata": ["category": "books", "year": 2021, "price": 12.5, "in_stock": true]],
                    ["id": "a2", "vector": [0.4, 0.3, 0.2, 0.1], "metadata": ["category": "music", "year": 2019]],
                    ["id": "a3", "vector": [0.5, -0.5, 0.5, -0.5], "metadata": ["category": "books", "year": 2019]],
                ]
                let upserted = try await api.call("POST", "/v1/collections/books/points", ["points": points])
                #expect(upserted.status == 200, "\(upserted.json)")
            }
            let reports = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-schemathesis-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: reports) }
            let arguments = [
                "schemathesis", "run", Self.spec,
                "--url", "http://\(peer.host):\(peer.port)",
                "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--phases", "examples,coverage,fuzzing",
                "--max-examples", "10",
                "--seed", "20261121",
                // One worker: with two, hypothesis parses lambda sources from two threads at once and
                // CPython 3.11 sometimes fails inside ast.parse ("AST constructor recursion depth
                // mismatch"), a runtime error of the tool, not a finding (seen once in CI).
                "--workers", "1",
                "--request-timeout", "20",
                "--suppress-health-check", "all",
                "--no-color",
                "--report-dir", reports,
            ]
            let result = try await runTool(arguments, timeout: 240)
            let summary = result.stdout.split(separator: "\n").suffix(80).joined(separator: "\n")
            #expect(result.status == 0, "schemathesis \(arguments.dropFirst(2).joined(separator: " ")) found failures:\n\(summary)\n\(result.stderr)")
        }
    }
}

/// The service as `withService` runs it, with small write-ahead-log files: schemathesis creates
/// many collections, and each has a WAL file on every shard (1 MiB at first, growing up to the rotation size).
private func withSpecService(_ body: (Peer) async throws -> Void) async throws {
    let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-openapi-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dataDir) }
    var configuration = ServiceConfiguration()
    configuration.port = 0
    configuration.dataDirectory = dataDir
    configuration.shutdownGracePeriod = .seconds(2)
    configuration.storage.walFileBytes = 1 << 20
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let service = try VecShardService(configuration: configuration, group: group)
    let serviceGroup = ServiceGroup(services: [service], logger: Logger(label: "openapi-test"))
    let running = Task { try await serviceGroup.run() }
    let port = try await service.waitUntilListening()
    let result: Result<Void, any Error>
    do { result = .success(try await body(Peer(host: "127.0.0.1", port: port))) } catch { result = .failure(error) }
    await serviceGroup.triggerGracefulShutdown()
    try await running.value
    try await group.shutdownGracefully()
    try result.get()
}
