import Foundation

/// Helpers shared by the end-to-end tests of this target: running a command (the `vecshard`
/// binary or a Python tool) to completion without blocking the cooperative thread pool.

/// `vecshard ARGUMENTS...`, the binary SwiftPM built next to the tests.
func runVecshard(_ arguments: [String], timeout: Double = 120) async throws -> ToolResult {
    try await runTool([ProcessTests.executable.path] + arguments, timeout: timeout)
}

struct ToolResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Both streams, for tools that report on either.
    var output: String { stdout + stderr }
}

/// Runs a command found on PATH to completion on a thread of its own (never on the two-thread
/// cooperative pool, which the in-process server needs for its handlers), output into files (no
/// pipe to fill up), killed after `timeout` seconds.
func runTool(_ command: [String], timeout: Double = 120) async throws -> ToolResult {
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
