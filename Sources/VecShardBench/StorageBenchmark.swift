#if canImport(Glibc)
import VecShardPrimitives
import Glibc
#endif
import Foundation
import VecShardEngine
import VecShardSchema
import VecShardStorage
import VecShardTesting

/// `vecshard bench-storage`: the storage layer against its anchors, measured in the same
/// run. Prints one JSON line per measurement.
///
/// - `disk`: sequential write bandwidth by `dd` (1 MiB blocks, O_DIRECT and with a final
///   fdatasync): the anchor of the WAL.
/// - `upsert`: fsync-acknowledged upserts of batches of 1000 points (dimension 128 and
///   768; 1 and 8 concurrent writers): vectors/s and WAL MB/s, and their ratio to `disk`.
/// - `recovery`: time to reopen a shard holding `recoveryVectors` 128-d vectors after a
///   clean close and after SIGKILL of the process that wrote them (child process).
/// - `memory`: resident memory of a process that opened a shard of `memoryVectors`
///   768-d vectors in IVF_PQ (m = 96) segments, scaled to one million, against the raw
///   float32 size.
public struct StorageBenchmark {
    public struct Configuration: Sendable {
        public var directory: String
        public var upsertVectors128 = 200_000
        public var upsertVectors768 = 60_000
        public var recoveryVectors = 1_000_000
        public var memoryVectors = 200_000
        public var parts: Set<String> = ["disk", "upsert", "recovery", "memory"]
        /// Runs a child phase of this benchmark (`load` or `rss`) in a new process; the
        /// command re-executes itself with these arguments.
        public var childCommand: [String]
        public init(directory: String, childCommand: [String]) {
            self.directory = directory
            self.childCommand = childCommand
        }
    }

    let config: Configuration
    public init(_ config: Configuration) { self.config = config }

    static func emit(_ fields: [(String, Any)]) {
        let body = fields.map { key, value -> String in
            switch value {
            case let s as String: return "\"\(key)\":\"\(s)\""
            case let d as Double: return "\"\(key)\":\(String(format: "%.3f", d))"
            default: return "\"\(key)\":\(value)"
            }
        }.joined(separator: ",")
        StorageStressWorkload.writeLine("{\(body)}")
    }

    public func run() async throws {
        try FileManager.default.createDirectory(atPath: config.directory, withIntermediateDirectories: true)
        var disk = (direct: 0.0, fdatasync: 0.0)
        if config.parts.contains("disk") || config.parts.contains("upsert") { disk = try measureDisk() }
        if config.parts.contains("upsert") {
            for (dim, n) in [(128, config.upsertVectors128), (768, config.upsertVectors768)] {
                for writers in [1, 8] {
                    try await measureUpserts(dimension: dim, vectors: n, writers: writers, disk: disk)
                }
            }
            if config.parts.contains("disk") { disk = try measureDisk() } // interleaved: A B A
        }
        if config.parts.contains("recovery") { try await measureRecovery() }
        if config.parts.contains("memory") { try await measureMemory() }
    }

    // MARK: disk anchor

    func measureDisk() throws -> (direct: Double, fdatasync: Double) {
        let file = config.directory + "/dd.bin"
        defer { unlink(file) }
        func dd(_ flag: String) throws -> Double {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/dd")
            p.arguments = ["if=/dev/zero", "of=\(file)", "bs=1M", "count=1024", flag]
            let err = Pipe()
            p.standardError = err
            let start = Date()
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            let seconds = Date().timeIntervalSince(start)
            // "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.98 s, 1.1 GB/s": recompute from the seconds dd reports.
            if let part = text.split(separator: ",").dropLast().last?.trimmingCharacters(in: .whitespaces),
               let s = Double(part.replacingOccurrences(of: " s", with: "")) {
                return 1024.0 * 1_048_576 / s / 1e6
            }
            return 1024.0 * 1_048_576 / seconds / 1e6
        }
        let direct = try dd("oflag=direct")
        let sync = try dd("conv=fdatasync")
        Self.emit([("part", "disk"), ("dd_direct_MBps", direct), ("dd_fdatasync_MBps", sync)])
        return (direct, sync)
    }

    // MARK: upserts

    static func vectors(_ n: Int, dimension: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<(n * dimension)).map { _ in Float(Int(g.next() % 2001) - 1000) / 1000 }
    }

    static func batch(_ base: Int, _ count: Int, dimension: Int, data: [Float]) -> [Point] {
        let rows = data.count / dimension
        return (0..<count).map { i in
            let r = (base + i) % rows
            return Point(id: "pt-\(base + i)", vector: Array(data[(r * dimension)..<((r + 1) * dimension)]),
                         metadata: ["category": .string("c\((base + i) % 16)"), "n": .int(Int64(base + i))])
        }
    }

    func measureUpserts(dimension: Int, vectors n: Int, writers: Int, disk: (direct: Double, fdatasync: Double)) async throws {
        let dir = config.directory + "/upsert-\(dimension)-\(writers)"
        FileIO_removeTree(dir)
        defer { FileIO_removeTree(dir) }
        // No sealing during the measurement: the WAL and the growing segment only.
        let options = StorageOptions(thresholds: SegmentThresholds(sealRows: n + 1, sealBytes: Int.max), automaticMaintenance: false)
        let shard = try await Shard.open(directory: dir, options: options)
        let c = try await shard.createCollection(CollectionSchema(name: "u", dimension: dimension, metric: .l2, index: IndexSpec(kind: .flat)))
        let data = Self.vectors(20_000, dimension: dimension, seed: 7)
        let batches = n / 1000
        // Prepare the batches first: the clock measures storage, not point construction.
        let prepared = (0..<batches).map { Self.batch($0 * 1000, 1000, dimension: dimension, data: data) }
        let cpuBefore = Self.cpuSeconds()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    var b = w
                    while b < batches {
                        try await c.upsert(prepared[b])
                        b += writers
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let cpu = Self.cpuSeconds() - cpuBefore
        let description = c.describe()
        let walBytes = description.walBytesAppended
        let mbps = Double(walBytes) / seconds / 1e6
        let ioMBps = Double(walBytes) / max(description.walIOSeconds, 1e-9) / 1e6
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
        Self.emit([("part", "upsert"), ("dimension", dimension), ("writers", writers), ("batch", 1000), ("vectors", batches * 1000),
                   ("seconds", seconds), ("vectors_per_s", Double(batches * 1000) / seconds), ("wal_MBps", mbps),
                   ("wal_bytes", walBytes), ("vs_dd_direct", mbps / disk.direct), ("vs_dd_fdatasync", mbps / disk.fdatasync),
                   ("wal_io_MBps", ioMBps), ("wal_io_vs_dd_direct", ioMBps / disk.direct),
                   ("wal_io_busy", description.walIOSeconds / seconds), ("wal_apply_busy", description.walApplySeconds / seconds),
                   ("cpu_us_per_vector", cpu * 1e6 / Double(batches * 1000)), ("cpu_cores_busy", cpu / seconds), ("loadavg", load)])
        await shard.close()
    }

    /// User + system CPU seconds of this process so far (every thread): how much of the two
    /// cores the write path used, which the load of other processes does not change much.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    // MARK: recovery

    /// Child phase "load": writes `vectors` 128-d points into `dir` (FLAT segments, default
    /// thresholds), prints "loaded", then waits to be killed (or closes cleanly with `clean`).
    public static func childLoad(directory: String, vectors: Int, clean: Bool) async throws {
        let shard = try await Shard.open(directory: directory)
        let c = try await shard.createCollection(CollectionSchema(name: "r", dimension: 128, metric: .l2, index: IndexSpec(kind: .flat)))
        let data = Self.vectors(20_000, dimension: 128, seed: 3)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<4 {
                group.addTask {
                    var b = w
                    while b * 1000 < vectors {
                        try await c.upsert(Self.batch(b * 1000, 1000, dimension: 128, data: data))
                        b += 4
                    }
                }
            }
            try await group.waitForAll()
        }
        let d = c.describe()
        StorageStressWorkload.writeLine("loaded \(d.pointCount) wal_bytes \(d.walBytes) sealed \(d.segments.filter { $0.state == .sealed }.count)")
        if clean {
            await shard.close()
            return
        }
        while true { sleep(1000) }
    }

    func runChild(_ args: [String], killAfterLine: Bool) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = config.childCommand + args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        var text = ""
        let h = out.fileHandleForReading
        while !text.contains("\n") {
            let d = h.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        if killAfterLine { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func measureRecovery() async throws {
        for clean in [true, false] {
            let dir = config.directory + "/recovery-\(clean ? "clean" : "kill")"
            FileIO_removeTree(dir)
            let loaded = try runChild(["--phase", "load", "--child-directory", dir, "--child-vectors", String(config.recoveryVectors)]
                                      + (clean ? ["--clean"] : []), killAfterLine: !clean)
            let start = ContinuousClock.now
            let shard = try await Shard.open(directory: dir)
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            let c = try shard.collection("r")
            Self.emit([("part", "recovery"), ("stop", clean ? "clean" : "sigkill"), ("vectors", c.count), ("dimension", 128),
                       ("open_seconds", seconds), ("wal_records_replayed", c.recovery.recordsReplayed),
                       ("segments", c.describe().segments.count), ("writer", loaded)])
            await shard.close()
            FileIO_removeTree(dir)
        }
    }

    // MARK: memory

    /// Child phase "rss": opens the shard and reports /proc/self/status memory lines.
    public static func childRSS(directory: String) async throws {
        let before = residentMemory()
        let shard = try await Shard.open(directory: directory)
        let c = try shard.collection("m")
        let after = residentMemory()
        let d = c.describe()
        StorageStressWorkload.writeLine("rss \(after.rss - before.rss) anon \(after.anon - before.anon) file \(after.file - before.file) points \(d.pointCount) estimate \(d.memoryBytes)")
    }

    /// VmRSS, RssAnon, RssFile in bytes.
    static func residentMemory() -> (rss: Int, anon: Int, file: Int) {
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
                return (Int(line.split(separator: " ").dropFirst().first { Int($0) != nil } ?? "0") ?? 0) * 1024
            }
            return 0
        }
        return (field("VmRSS"), field("RssAnon"), field("RssFile"))
    }

    func measureMemory() async throws {
        let n = config.memoryVectors
        let dir = config.directory + "/memory"
        FileIO_removeTree(dir)
        defer { FileIO_removeTree(dir) }
        let options = StorageOptions(thresholds: SegmentThresholds(sealRows: n, sealBytes: Int.max), automaticMaintenance: true)
        let shard = try await Shard.open(directory: dir, options: options)
        let spec = IndexSpec(kind: .ivfPQ, nlist: 256, nprobe: 16, pqM: 96, refine: 10, trainPointsPerCentroid: 64)
        let c = try await shard.createCollection(CollectionSchema(name: "m", dimension: 768, metric: .l2, index: spec))
        let data = Self.vectors(50_000, dimension: 768, seed: 11)
        let buildStart = ContinuousClock.now
        for b in 0..<(n / 1000) { try await c.upsert(Self.batch(b * 1000, 1000, dimension: 768, data: data)) }
        try await c.flush()
        let sealSeconds = (ContinuousClock.now - buildStart) / .seconds(1)
        let disk = c.describe().diskBytes
        await shard.close()
        let line = try runChild(["--phase", "rss", "--child-directory", dir], killAfterLine: false)
        let parts = line.split(separator: " ")
        func value(_ key: String) -> Double {
            guard let i = parts.firstIndex(of: Substring(key)), i + 1 < parts.count else { return 0 }
            return Double(parts[i + 1]) ?? 0
        }
        let perMillion = 1e6 / Double(n)
        Self.emit([("part", "memory"), ("index", "ivf_pq"), ("pq_m", 96), ("nlist", 256), ("dimension", 768), ("vectors", n),
                   ("load_and_seal_seconds", sealSeconds), ("disk_bytes", disk),
                   ("rss_MB_per_million", value("rss") * perMillion / 1e6), ("rss_anon_MB_per_million", value("anon") * perMillion / 1e6),
                   ("rss_file_MB_per_million", value("file") * perMillion / 1e6),
                   ("estimate_MB_per_million", value("estimate") * perMillion / 1e6),
                   ("raw_float32_MB_per_million", 768.0 * 4), ("child", line)])
    }
}

/// Removes a directory tree (benchmark scratch data).
func FileIO_removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}
