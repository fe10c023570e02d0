import Foundation
import Testing

/// Deadlines and gone clients stop the work, measured on the real binary: the server's CPU time
/// (from /proc) in the half second after an answer it could not give in time, or after the
/// client hung up, stays near zero instead of running the rest of the batch.
@Suite(.serialized) struct CancellationProcessTests {
    static let dimension = 64
    static let points = 80_000

    /// The server's user + system CPU seconds so far.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (Double(fields[11]) ?? 0) / ticks + (Double(fields[12]) ?? 0) / ticks
    }

    static func curl(_ port: Int, _ method: String, _ path: String, bodyFile: String? = nil, headers: [String] = [],
                     maxTime: Double = 120) async throws -> (code: Int, body: String, seconds: Double) {
        var command = ["curl", "-s", "-o", "-", "-w", "\n%{http_code} %{time_total}", "-X", method, "--max-time", String(maxTime)]
        for h in headers { command += ["-H", h] }
        if let bodyFile { command += ["--data-binary", "@" + bodyFile] }
        command.append("http://127.0.0.1:\(port)\(path)")
        let out = try await runTool(command, timeout: maxTime + 10).stdout
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        let last = lines.last.map(String.init) ?? ""
        let parts = last.split(separator: " ")
        return (Int(parts.first ?? "") ?? 0, lines.dropLast().joined(separator: "\n"), Double(parts.last ?? "") ?? 0)
    }

    @Test func anExpiredDeadlineOrAGoneClientStopsTheSearch() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-cancel-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dataDir)
            try? FileManager.default.removeItem(atPath: dataDir + ".log")
        }
        let (process, port, _) = try await ProcessTests.startServer(dataDir: dataDir, extra: ["--shards", "1"])
        defer { process.terminate() }
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-cancel-bodies-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: files) }
        var rng = SystemRandomNumberGenerator()
        func vector() -> String { "[" + (0..<Self.dimension).map { _ in String(Float.random(in: -1...1, using: &rng)) }.joined(separator: ",") + "]" }

        try #"{"dimension":\#(Self.dimension),"metric":"l2","index":{"type":"flat"}}"#.write(toFile: files + "/create.json", atomically: true, encoding: .utf8)
        #expect(try await Self.curl(port, "PUT", "/v1/collections/c", bodyFile: files + "/create.json").code == 200)
        for batch in 0..<(Self.points / 5_000) {
            let body = "{\"points\":[" + (0..<5_000).map { "{\"id\":\"p\(batch)-\($0)\",\"vector\":\(vector())}" }.joined(separator: ",") + "]}"
            try body.write(toFile: files + "/points.json", atomically: true, encoding: .utf8)
            #expect(try await Self.curl(port, "POST", "/v1/collections/c/points", bodyFile: files + "/points.json").code == 200)
        }
        // A batch of exact searches: every query scans every point.
        let queries = "{\"queries\":[" + (0..<1_000).map { _ in "{\"vector\":\(vector()),\"k\":10,\"params\":{\"exact\":true}}" }.joined(separator: ",") + "]}"
        try queries.write(toFile: files + "/batch.json", atomically: true, encoding: .utf8)

        let pid = process.processIdentifier
        let before = Self.cpuSeconds(pid)
        let full = try await Self.curl(port, "POST", "/v1/collections/c/search/batch", bodyFile: files + "/batch.json")
        let fullCPU = Self.cpuSeconds(pid) - before
        #expect(full.code == 200)
        // The test means something only when the whole batch costs clearly more than the deadline.
        // The test means something only when the batch costs clearly more than what follows.
        try #require(fullCPU > 1.2, "the full batch took only \(fullCPU) s of CPU")

        /// CPU seconds the server spends in the half second after `now`.
        func tail() async throws -> Double {
            let start = Self.cpuSeconds(pid)
            try await Task.sleep(for: .milliseconds(500))
            return Self.cpuSeconds(pid) - start
        }

        // 1. A deadline of 100 ms: answered 504 at about the deadline, and the work stops.
        let late = try await Self.curl(port, "POST", "/v1/collections/c/search/batch", bodyFile: files + "/batch.json",
                                       headers: ["x-request-timeout-ms: 100"])
        let lateTail = try await tail()
        #expect(late.code == 504, "\(late)")
        #expect(late.seconds < 1.0, "answered after \(late.seconds) s")
        #expect(lateTail < 0.15, "an expired search went on for \(lateTail) s of CPU; the whole batch takes \(fullCPU) s")

        // 2. The client goes away after 300 ms (curl closes its connection): the work stops too.
        _ = try await Self.curl(port, "POST", "/v1/collections/c/search/batch", bodyFile: files + "/batch.json", maxTime: 0.3)
        let goneTail = try await tail()
        #expect(goneTail < 0.15, "an abandoned search went on for \(goneTail) s of CPU; the whole batch takes \(fullCPU) s")

        // The server still answers normally.
        #expect(try await Self.curl(port, "GET", "/v1/collections/c").body.contains("\"count\":\(Self.points)"))
    }
}
