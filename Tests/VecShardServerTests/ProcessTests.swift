import Foundation
import Testing

/// End-to-end: the real `vecshard` binary as a child process on 127.0.0.1.
@Suite struct ProcessTests {
    /// The executable SwiftPM built next to the test bundle.
    static var executable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("vecshard")
    }

    /// Starts `vecshard serve --port 0` and returns it with the port it logged.
    static func startServer(dataDir: String, port: Int = 0, extra: [String] = []) async throws -> (Process, Int, URL) {
        let log = URL(fileURLWithPath: dataDir + ".log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir] + extra
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("vecshard ready") }),
               let range = line.range(of: "port=") {
                let port = Int(line[range.upperBound...].prefix(while: \.isNumber))!
                return (process, port, log)
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        process.terminate()
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "server did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")"])
    }

    @Test func serveAnswersThenExitsZeroOnSIGTERM() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-proc-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dataDir)
            try? FileManager.default.removeItem(atPath: dataDir + ".log")
        }
        let (process, port, log) = try await Self.startServer(dataDir: dataDir)
        let health = try await runTool(["curl", "-s", "--max-time", "5", "http://127.0.0.1:\(port)/healthz"], timeout: 10).stdout
        #expect(health == #"{"status":"ok"}"#)
        #expect(FileManager.default.fileExists(atPath: dataDir))
        kill(process.processIdentifier, SIGTERM)
        try await waitForExit(process, seconds: 10)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("shutting down"))
        #expect(text.contains("stopped"))
    }

    @Test func badFlagsAreRejectedWithAMessage() async throws {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["serve", "--log-level", "loud"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try await waitForExit(process, seconds: 10)
        #expect(process.terminationStatus != 0)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("unknown --log-level 'loud'"))
    }

    private func waitForExit(_ process: Process, seconds: Int) async throws {
        for _ in 0..<(seconds * 20) where process.isRunning { try await Task.sleep(nanoseconds: 50_000_000) }
        if process.isRunning {
            process.terminate()
            Issue.record("process did not exit within \(seconds) s")
        }
    }
}
