import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import VecShardHTTP

/// Load generator built on the project's own HTTP/2 client: N tasks, each issuing requests back
/// to back over one shared connection, for a fixed number of requests.
struct BenchHTTPClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-http-client",
        abstract: "Measure the project's HTTP/2 client: requests/s over one connection with N concurrent requests."
    )

    @Option(help: "host:port of an HTTP/2 server.") var peer = "127.0.0.1:8080"
    @Option(help: "Request path.") var path = "/healthz"
    @Option(help: "Requests in flight at once.") var concurrency = 100
    @Option(help: "Total requests.") var requests = 200_000
    @Option(help: "Event-loop threads of the client.") var threads = 1

    func run() async throws {
        guard let peer = Peer(peer) else { throw ValidationError("--peer must be host:port") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let client = HTTP2Client(group: group)
        _ = try await client.execute(ClientRequest(path: path), to: peer, timeout: .seconds(5)) // connect + warm up
        let perTask = requests / concurrency
        let start = ContinuousClock.now
        let failures = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for _ in 0..<concurrency {
                tasks.addTask {
                    var failed = 0
                    for _ in 0..<perTask {
                        let response = try await client.execute(ClientRequest(path: path), to: peer, timeout: .seconds(10))
                        if response.status != 200 { failed += 1 }
                    }
                    return failed
                }
            }
            return try await tasks.reduce(0, +)
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let done = perTask * concurrency
        print(#"{"client":"vecshard","requests":\#(done),"failed":\#(failures),"concurrency":\#(concurrency),"seconds":\#(String(format: "%.3f", seconds)),"rps":\#(Int(Double(done) / seconds))}"#)
        await client.shutdown()
        try await group.shutdownGracefully()
    }
}
