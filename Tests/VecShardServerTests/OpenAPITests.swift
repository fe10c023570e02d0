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
                "--workers", "2",
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
/// many collections, and each preallocates a WAL file on every shard (64 MiB by default).
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

private struct ToolResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a command found on PATH to completion on a thread of its own (never on the two-thread
/// cooperative pool, which the in-process server needs for its handlers), output into files (no
/// pipe to fill up), killed after `timeout` seconds.
private func runTool(_ command: [String], timeout: Double) async throws -> ToolResult {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ToolResult, any Error>) in
        let thread = Thread {
            continuation.resume(with: Result {
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-tool-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                let out = directory.appendingPathComponent("stdout"), err = directory.appendingPathComponent("stderr")
                FileManager.default.createFile(atPath: out.path, contents: nil)
                FileManager.default.createFile(atPath: err.path, contents: nil)
                let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = command
                var environment = ProcessInfo.processInfo.environment
                environment["PYTHONUNBUFFERED"] = "1"
                environment["NO_COLOR"] = "1"
                process.environment = environment
                process.standardOutput = outHandle
                process.standardError = errHandle
                process.standardInput = FileHandle.nullDevice
                try process.run()
                let deadline = Date().addingTimeInterval(timeout)
                while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
                var timedOut = false
                if process.isRunning {
                    timedOut = true
                    process.terminate()
                }
                process.waitUntilExit()
                try? outHandle.close()
                try? errHandle.close()
                let stdout = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
                var stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
                if timedOut { stderr += "\n(killed after \(Int(timeout)) s)" }
                return ToolResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
            })
        }
        thread.start()
    }
}
