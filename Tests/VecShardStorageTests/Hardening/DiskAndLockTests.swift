import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

/// A full disk (injected ENOSPC, and a real small tmpfs where it can be mounted), log
/// files reused and grown lazily, the data directory's lock, the collection limit.
@Suite("Disk full, log growth, lock, collection limit", .serialized)
struct DiskAndLockTests {
    static let dim = 8

    func schema(_ name: String) -> CollectionSchema {
        CollectionSchema(name: name, dimension: Self.dim, metric: .l2, index: IndexSpec(kind: .flat))
    }

    func points(_ n: Int, seed: UInt64, prefix: String = "p") -> [Point] {
        var src = VectorSource(seed: seed, dimension: Self.dim)
        return (0..<n).map { Point(id: "\(prefix)\($0)", vector: src.vector()) }
    }

    func walFiles(_ dir: String, _ collection: String) -> [String] {
        FileIO.list(dir + "/collections/" + collection + "/wal").filter { WALFileName.parse($0) != nil }
    }

    @Test func restartsReuseTheLastLogFileAndNewFilesStartSmall() async throws {
        let dir = TemporaryDirectory("wal-reuse")
        var options = StorageOptions(automaticMaintenance: false) // 64 MiB rotation, 1 MiB first allocation
        options.walInitialFileBytes = 1 << 20
        var shard = try await Shard.open(directory: dir.path, options: options)
        var c = try await shard.createCollection(schema("c"))
        #expect(c.describe().walBytes <= 1 << 20, "a new collection holds at most 1 MiB of log, not 64 MiB")
        let all = points(3000, seed: 1)
        for cycle in 0..<10 {
            try await c.upsert(Array(all[(cycle * 300)..<(cycle * 300 + 300)]))
            await shard.close()
            shard = try await Shard.open(directory: dir.path, options: options)
            c = try shard.collection("c")
            #expect(walFiles(dir.path, "c").count == 1, "cycle \(cycle): \(walFiles(dir.path, "c"))")
        }
        #expect(c.count == 3000)
        for p in all.prefix(50) { #expect(c.get(p.id) == p) }
        // 3000 records of 8-d points: about 0.2 MiB of records, so the file never had to grow.
        #expect(c.describe().walBytes <= 1 << 20)
        // Growing past the first allocation: fallocate steps, same file, data survives.
        for b in 0..<15 { try await c.upsert(points(2000, seed: UInt64(100 + b), prefix: "big\(b)-")) }
        let grown = c.describe().walBytes
        #expect(grown > 1 << 20 && grown < 64 << 20, "\(grown)")
        await shard.close()
        shard = try await Shard.open(directory: dir.path, options: options)
        #expect(try shard.collection("c").count == 33000)
        #expect(walFiles(dir.path, "c").count == 1)
        await shard.close()
    }

    @Test func aFullDiskAtStartOpensReadOnlyThenWritesResumeWhenSpaceIsBack() async throws {
        let dir = TemporaryDirectory("disk-full-start")
        var shard = try await Shard.open(directory: dir.path, options: smallOptions())
        var c = try await shard.createCollection(schema("c"))
        let all = points(40, seed: 2)
        try await c.upsert(Array(all[0..<20]))
        await shard.close()
        // A new log file per start would not fit; the full file system refuses any allocation.
        // Make the reused file full too, so the first write must allocate.
        DiskFaults.fillDisk(under: dir.path)
        defer { DiskFaults.freeDisk(under: dir.path) }
        shard = try await Shard.open(directory: dir.path, options: smallOptions())
        c = try shard.collection("c")
        #expect(c.count == 20, "reads work on a full disk")
        #expect(try c.search(all[0].vector, parameters: SearchParameters(k: 1)).first?.id == "p0")
        do {
            try await c.upsert(Array(all[20..<40]))
            Issue.record("a write went through on a full disk")
        } catch let e as StorageError {
            #expect(e.code == "disk_full" && e.kind == .resourceExhausted, "\(e)")
        }
        #expect(c.count == 20 && c.describe().diskFull)
        // A collection created on the full disk leaves nothing behind.
        await #expect(throws: StorageError.diskFull(path: dir.path + "/collections/.new.creating")) {
            try await shard.createCollection(schema("new"))
        }
        #expect(!FileIO.list(dir.path + "/collections").contains { $0.contains("new") })
        #expect(shard.listCollections().map(\.name) == ["c"])
        DiskFaults.freeDisk(under: dir.path)
        try await c.upsert(Array(all[20..<40]))
        #expect(c.count == 40 && !c.describe().diskFull)
        try await shard.createCollection(schema("new"))
        await shard.close()
        shard = try await Shard.open(directory: dir.path, options: smallOptions())
        #expect(try shard.collection("c").count == 40)
        await shard.close()
    }

    @Test func aFullDiskAtTheFirstLogFileOfANewCollectionLeavesNothingBehind() async throws {
        let dir = TemporaryDirectory("disk-full-create")
        let shard = try await Shard.open(directory: dir.path, options: smallOptions())
        // The collection's files fit, its first log file does not.
        DiskFaults.fillDisk(under: dir.path + "/collections/x/wal")
        defer { DiskFaults.freeDisk(under: dir.path + "/collections/x/wal") }
        do {
            try await shard.createCollection(schema("x"))
            Issue.record("created on a full disk")
        } catch let e as StorageError {
            #expect(e.code == "disk_full", "\(e)")
        }
        #expect(FileIO.list(dir.path + "/collections").isEmpty, "\(FileIO.list(dir.path + "/collections"))")
        #expect(throws: StorageError.collectionNotFound("x")) { try shard.collection("x") }
        DiskFaults.freeDisk(under: dir.path + "/collections/x/wal")
        let c = try await shard.createCollection(schema("x"))
        try await c.upsert(points(3, seed: 3))
        await shard.close()
    }

    /// A real full file system: a 3 MiB tmpfs (skipped where mounting is not allowed).
    @Test func aRealFullTmpfsKeepsTheCollectionReadableAndStartsReadOnly() async throws {
        let mountPoint = TemporaryDirectory("tmpfs")
        guard run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mountPoint.path]) == 0 else { return }
        defer { _ = run(["umount", mountPoint.path]) }
        let dir = mountPoint.path + "/shard"
        var shard = try await Shard.open(directory: dir, options: smallOptions())
        var c = try await shard.createCollection(schema("c"))
        let all = points(100, seed: 4)
        try await c.upsert(Array(all[0..<50]))
        // Fill the rest of the file system.
        let filler = mountPoint.path + "/filler"
        _ = run(["dd", "if=/dev/zero", "of=\(filler)", "bs=64k", "count=100"])
        do {
            for i in 0..<200 { try await c.upsert(points(200, seed: UInt64(10 + i), prefix: "f\(i)-")) }
            Issue.record("the tmpfs never filled up")
        } catch let e as StorageError {
            #expect(e.code == "disk_full", "\(e)")
        }
        let acknowledged = c.count
        await shard.close()
        shard = try await Shard.open(directory: dir, options: smallOptions()) // used to fail: a new log file per start
        c = try shard.collection("c")
        #expect(c.count == acknowledged)
        for p in all[0..<50] { #expect(c.get(p.id) == p) }
        await #expect(throws: StorageError.self) { try await shard.createCollection(schema("more")) }
        #expect(!FileIO.list(dir + "/collections").contains { $0.contains("more") })
        unlink(filler)
        try await c.upsert(Array(all[50..<100]))
        #expect(c.get("p99") == all[99])
        await shard.close()
    }

    func run(_ command: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = command
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test func aSecondOpenOfTheDataDirectoryFailsNamingItAndTheHolder() async throws {
        let dir = TemporaryDirectory("lock")
        let shard = try await Shard.open(directory: dir.path, options: smallOptions())
        await #expect(throws: StorageError.dataDirectoryLocked(path: dir.path, holderPID: getpid())) {
            try await Shard.open(directory: dir.path, options: smallOptions())
        }
        let e = StorageError.dataDirectoryLocked(path: dir.path, holderPID: getpid())
        #expect("\(e)".contains(dir.path) && "\(e)".contains("pid \(getpid())") && e.code == "data_directory_locked")
        // Another process: `vecshard recover` on the same directory is refused too.
        let here = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let p = Process()
        p.executableURL = here.appendingPathComponent("vecshard")
        p.arguments = ["recover", "--data-dir", dir.path]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus != 0)
        #expect(message.contains(dir.path) && message.contains("pid \(getpid())"), "\(message)")
        await shard.close()
        let again = try await Shard.open(directory: dir.path, options: smallOptions())
        await again.close()
    }

    @Test func creatingMoreThanMaxCollectionsIsRefusedNamingTheLimit() async throws {
        let dir = TemporaryDirectory("limit")
        var options = smallOptions()
        options.maxCollections = 3
        let shard = try await Shard.open(directory: dir.path, options: options)
        for i in 0..<3 { try await shard.createCollection(schema("c\(i)")) }
        do {
            try await shard.createCollection(schema("c3"))
            Issue.record("a fourth collection was created")
        } catch let e as StorageError {
            #expect(e == .collectionLimitReached(name: "c3", limit: 3))
            #expect(e.code == "limit_exceeded" && e.kind == .invalidArgument && "\(e)".contains("--max-collections 3"), "\(e)")
        }
        #expect(!FileIO.list(dir.path + "/collections").contains("c3"))
        try await shard.dropCollection("c0")
        try await shard.createCollection(schema("c3"))
        await shard.close()
    }
}
