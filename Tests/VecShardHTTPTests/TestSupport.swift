import Foundation
import NIOCore
import NIOPosix
@testable import VecShardHTTP

/// A server on 127.0.0.1 with an ephemeral port, stopped when `body` returns.
func withTestServer<T>(router: Router, limits: HTTPServerLimits = HTTPServerLimits(), tls: TLSContext? = nil,
                       _ body: (HTTPServer, Int) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0, tls: tls)
    configuration.limits = limits
    let server = HTTPServer(configuration: configuration, router: router, group: group)
    try await server.start()
    do {
        let result = try await body(server, server.port)
        await server.shutdown(gracePeriod: .seconds(2))
        try await group.shutdownGracefully()
        return result
    } catch {
        await server.shutdown(gracePeriod: .seconds(2))
        try? await group.shutdownGracefully()
        throw error
    }
}

/// A client on its own event loop, shut down when `body` returns.
func withClient<T>(tls: TLSContext? = nil, _ body: (HTTP2Client) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var configuration = HTTP2Client.Configuration()
    configuration.tls = tls
    let client = HTTP2Client(group: group, configuration: configuration)
    do {
        let result = try await body(client)
        await client.shutdown()
        try await group.shutdownGracefully()
        return result
    } catch {
        await client.shutdown()
        try? await group.shutdownGracefully()
        throw error
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs blocking work on a thread of its own, so that it never occupies the (two-thread)
/// cooperative pool that the server under test needs for its handlers.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// Runs a command to completion (never through a shell), off the cooperative pool.
func run(_ executable: String, _ arguments: [String]) async throws -> ProcessResult {
    try await blocking { try runBlocking(executable, arguments) }
}

private func runBlocking(_ executable: String, _ arguments: [String]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

/// curl with `-s` and the status code appended on a last line of its own.
func curl(_ arguments: [String]) async throws -> (status: Int, body: String) {
    let result = try await run("/usr/bin/curl", ["-s", "--max-time", "10", "-w", "\n%{http_code}"] + arguments)
    var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let status = Int(lines.popLast() ?? "") ?? -1
    return (status, lines.joined(separator: "\n"))
}

func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A router with the routes the tests use.
func makeTestRouter() -> Router {
    var router = Router()
    router.add("GET", "/healthz", .inline { _ in .json(.ok, #"{"status":"ok"}"#) })
    router.post("/echo") { request in
        ServerResponse(status: .ok, headers: ["content-type": "application/octet-stream"], body: .buffer(request.body))
    }
    router.get("/items/{id}") { request in
        .json(.ok, #"{"id":"# + JSONString.quoted(request.pathParameters["id"] ?? "") + "}")
    }
    router.get("/slow") { request in
        let ms = Int(request.queryParameter("ms") ?? "300") ?? 300
        try await Task.sleep(nanoseconds: UInt64(ms) * 1_000_000)
        return .json(.ok, #"{"slept_ms":\#(ms)}"#)
    }
    router.get("/stream") { request in
        let chunks = Int(request.queryParameter("chunks") ?? "4") ?? 4
        return ServerResponse(status: .ok, headers: ["content-type": "text/plain"], body: .stream { writer in
            for i in 0..<chunks { try await writer.write(ByteBuffer(string: "chunk \(i)\n")) }
            return ["x-checksum": "done"]
        })
    }
    return router
}

extension ByteBuffer {
    var string: String { String(buffer: self) }
}
