import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardTesting
import VecShardSchema
import VecShardPrimitives

/// The environment variable that turns `stressChild` into the crash-test child process
/// (used when the `vecshard` binary does not offer `storage-stress` yet).
private let childArgumentsVariable = "VECSHARD_STORAGE_STRESS_CHILD"

/// Runs the shard as a child process with concurrent writers, SIGKILLs it at random
/// moments, reopens the shard in-process and checks: every acknowledged upsert is present
/// with its latest vector and metadata, no acknowledged delete comes back; only each
/// writer's one unacknowledged (in-flight) operation may or may not have happened.
@Suite("Crash recovery with SIGKILL", .serialized)
struct CrashRecoveryTests {
    static let writers = 4
    static let idsPerWriter = 40
    static let dimension = 8
    static let cycles = 22

    /// The child: runs only when the parent test sets the environment variable.
    @Test func stressChild() async throws {
        guard let raw = ProcessInfo.processInfo.environment[childArgumentsVariable] else { return }
        let a = raw.split(separator: " ").map(String.init)
        let workload = StorageStressWorkload(seed: UInt64(a[1])!, writers: Self.writers, idsPerWriter: Self.idsPerWriter,
                                             dimension: Self.dimension)
        try await workload.run(directory: a[0], collection: "stress", sealRows: Int(a[2])!, operations: 1_000_000,
                               emit: StorageStressWorkload.writeLine)
    }

    /// The `vecshard` executable next to the test bundle, if it has the subcommand.
    static func childCommand(directory: String, seed: UInt64, sealRows: Int) -> (URL, [String], [String: String]) {
        let here = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let vecshard = here.appendingPathComponent("vecshard")
        if hasStressCommand(vecshard) {
            return (vecshard, ["storage-stress", "--directory", directory, "--seed", String(seed),
                               "--writers", String(writers), "--ids-per-writer", String(idsPerWriter),
                               "--dimension", String(dimension), "--seal-rows", String(sealRows)], [:])
        }
        // Fallback until the subcommand is registered: this test bundle, running `stressChild`.
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var env = ProcessInfo.processInfo.environment
        env[childArgumentsVariable] = "\(directory) \(seed) \(sealRows)"
        return (me, ["--testing-library", "swift-testing", "--filter", "CrashRecoveryTests/stressChild"], env)
    }

    nonisolated(unsafe) static var probed: Bool?
    static func hasStressCommand(_ binary: URL) -> Bool {
        if let probed { return probed }
        let p = Process()
        p.executableURL = binary
        p.arguments = ["storage-stress", "--help"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        var ok = false
        if (try? p.run()) != nil {
            let help = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            // An unregistered subcommand falls through to the default one, whose help lacks our options.
            ok = p.terminationStatus == 0 && help.contains("--ids-per-writer")
        }
        probed = ok
        return ok
    }

    /// Starts the child, waits for "ready", lets it write for `runFor`, SIGKILLs it and
    /// returns the acknowledged operation count per writer. Blocking: run off the pool.
    static func runAndKill(directory: String, seed: UInt64, runFor: Double) throws -> [Int: Int] {
        let (exe, args, env) = childCommand(directory: directory, seed: seed, sealRows: 150)
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        if !env.isEmpty { p.environment = env }
        let out = Pipe()
        p.standardOutput = out
        let errPath = directory + ".stderr"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        let lines = Locked<(text: String, ready: Bool)>(("", false))
        let finished = DispatchSemaphore(value: 0)
        let reader = Thread {
            defer { finished.signal() }
            let h = out.fileHandleForReading
            while true {
                let d = h.availableData
                if d.isEmpty { break }
                lines.withLock { s in
                    s.text += String(decoding: d, as: UTF8.self)
                    if s.text.contains("ready ") { s.ready = true }
                }
            }
        }
        reader.start()
        let deadline = Date().addingTimeInterval(30)
        while !lines.withLock({ $0.ready }) && Date() < deadline && p.isRunning { usleep(2_000) }
        usleep(useconds_t(runFor * 1e6))
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // The pipe's write end closes with the child: wait for the reader to drain it.
        _ = finished.wait(timeout: .now() + 10)
        let text = lines.withLock { $0.text }
        guard text.contains("ready ") else { throw StorageError.unavailable("child \(exe.path) \(args) never became ready: \(text.prefix(300)) \((try? String(contentsOfFile: errPath, encoding: .utf8))?.suffix(600) ?? "")") }
        var acked: [Int: Int] = [:]
        // Only whole lines count; a torn last line is an operation we treat as in flight.
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            guard let (w, i) = StorageStressWorkload.parseAck(line) else { continue }
            #expect(i == (acked[w] ?? 0), "writer \(w) acks in order")
            acked[w] = i + 1
        }
        return acked
    }

    @Test func acknowledgedWritesSurviveSigkill() async throws {
        if ProcessInfo.processInfo.environment[childArgumentsVariable] != nil { return }
        let dir = TemporaryDirectory("crash")
        var model: [String: Point] = [:] // the state every acknowledged write implies
        var rng = SplitMix64(seed: 2024)
        var totalAcks = 0
        for cycle in 0..<Self.cycles {
            let seed = UInt64(1000 + cycle)
            let runFor = 0.03 + Double(rng.next() % 220) / 1000
            let acked = try await runBlocking { try Self.runAndKill(directory: dir.path, seed: seed, runFor: runFor) }
            let workload = StorageStressWorkload(seed: seed, writers: Self.writers, idsPerWriter: Self.idsPerWriter,
                                                 dimension: Self.dimension)
            // Acknowledged operations, in order per writer (writers own disjoint ids).
            var inFlight: [String: Point?] = [:] // id -> state if the unacknowledged op happened
            for w in 0..<Self.writers {
                let n = acked[w] ?? 0
                totalAcks += n
                for i in 0..<n { apply(workload.operation(writer: w, index: i), to: &model) }
                var after = model
                let pending = workload.operation(writer: w, index: n)
                apply(pending, to: &after)
                for id in touched(pending) { inFlight[id] = .some(after[id]) }
            }
            // Reopen in-process and compare every id of the id space.
            let shard = try await Shard.open(directory: dir.path, options: smallOptions(sealRows: 150, automatic: true))
            let c = try shard.collection("stress")
            for w in 0..<Self.writers {
                for n in 0..<Self.idsPerWriter {
                    let id = "w\(w)-\(n)"
                    let actual = c.get(id)
                    if let alternative = inFlight[id], actual == alternative {
                        model[id] = alternative
                        continue
                    }
                    #expect(actual == model[id], "cycle \(cycle): id \(id): \(String(describing: actual)) vs \(String(describing: model[id]))")
                }
            }
            #expect(c.count == model.count, "cycle \(cycle)")
            let all = try c.search([Float](repeating: 0, count: Self.dimension), parameters: SearchParameters(k: 1000))
            #expect(all.count == model.count && Set(all.map(\.id)).count == all.count, "cycle \(cycle)")
            await shard.close()
        }
        #expect(totalAcks > Self.cycles * 5, "the child acknowledged too few writes (\(totalAcks)) to test anything")
    }

    func apply(_ op: StorageStressWorkload.Operation, to model: inout [String: Point]) {
        switch op {
        case let .upsert(points): for p in points { model[p.id] = p }
        case let .delete(ids): for id in ids { model[id] = nil }
        }
    }

    func touched(_ op: StorageStressWorkload.Operation) -> [String] {
        switch op {
        case let .upsert(points): return points.map(\.id)
        case let .delete(ids): return ids
        }
    }
}
