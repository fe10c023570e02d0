import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

/// Recovery of damaged write-ahead logs: only a torn tail (no valid record after it, in its
/// file or a later one) is cut without asking; any other damage keeps the collection closed
/// with an error naming the file, the offset and what would be lost, changes no file, and
/// is cut only when the operator accepts the loss (the damaged files are kept aside).
@Suite("WAL damage: refuse, report, accept")
struct WALDamageTests {
    static let dim = 8

    /// Options with events captured.
    final class Events: @unchecked Sendable {
        let list = Locked<[StorageEvent]>([])
        var all: [StorageEvent] { list.withLock { $0 } }
    }

    func options(_ events: Events? = nil, accept: Bool = false, walFileBytes: Int = 64 << 10) -> StorageOptions {
        var o = StorageOptions(thresholds: SegmentThresholds(sealRows: 1_000_000), walFileBytes: walFileBytes, automaticMaintenance: false)
        o.acceptWALDamage = accept
        if let events { o.eventHandler = { e in events.list.withLock { $0.append(e) } } }
        return o
    }

    func points(_ batch: Int, count: Int = 5) -> [Point] {
        var src = VectorSource(seed: UInt64(batch + 1), dimension: Self.dim)
        return (0..<count).map { Point(id: "b\(batch)-\($0)", vector: src.vector(), metadata: ["batch": .int(Int64(batch))]) }
    }

    /// A shard with collection "c" written by `records` upserts (one WAL record each) and
    /// an untouched collection "other"; closed. Returns the ids per record.
    @discardableResult
    func writeLog(_ dir: TemporaryDirectory, records: Int, pointsPerRecord: Int = 5, walFileBytes: Int = 64 << 10,
                  deleteLast: String? = nil) async throws -> [[String]] {
        let shard = try await Shard.open(directory: dir.path, options: options(walFileBytes: walFileBytes))
        let c = try await shard.createCollection(CollectionSchema(name: "c", dimension: Self.dim, metric: .l2, index: IndexSpec(kind: .flat)))
        let other = try await shard.createCollection(CollectionSchema(name: "other", dimension: Self.dim, metric: .l2, index: IndexSpec(kind: .flat)))
        try await other.upsert(points(999))
        var ids: [[String]] = []
        for r in 0..<records {
            let batch = points(r, count: pointsPerRecord)
            try await c.upsert(batch)
            ids.append(batch.map(\.id))
        }
        if let deleteLast { try await c.delete(ids: [deleteLast]) }
        await shard.close()
        return ids
    }

    var walFiles: (TemporaryDirectory) -> [String] {
        { dir in
            let w = dir.path + "/collections/c/wal"
            return FileIO.list(w).filter { WALFileName.parse($0) != nil }.map { w + "/" + $0 }
        }
    }

    /// Offsets of the records of a WAL file: (LSN, offset, length).
    func records(_ path: String) throws -> [(lsn: UInt64, offset: Int, length: Int)] {
        let bytes = try FileIO.read(path)
        var out: [(UInt64, Int, Int)] = []
        bytes.withUnsafeBytes { raw in
            var at = WALFileHeader.bytes
            while case let .record(record, length) = WALRecordCodec.decode(raw, at: at) {
                out.append((record.lsn, at, length))
                at += length
            }
        }
        return out
    }

    func flip(_ path: String, at offset: Int) throws {
        var bytes = try FileIO.read(path)
        bytes[offset] ^= 0x5A
        try FileIO.writeFile(path, bytes)
    }

    func expectRefused(_ shard: Shard, file: String, offset: Int? = nil, lost: Int? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) -> WALDamage? {
        do {
            _ = try shard.collection("c")
            Issue.record("the damaged collection opened", sourceLocation: sourceLocation)
        } catch let StorageError.walDamaged(damage) {
            #expect(damage.path.hasSuffix(file), "\(damage)", sourceLocation: sourceLocation)
            if let offset { #expect(damage.offset == offset, "\(damage)", sourceLocation: sourceLocation) }
            if let lost { #expect(damage.recordsAfter == lost, "\(damage)", sourceLocation: sourceLocation) }
            let e = StorageError.walDamaged(damage)
            #expect(e.code == "data_loss" && e.kind == .dataLoss, sourceLocation: sourceLocation)
            #expect("\(e)".contains(file) && "\(e)".contains("offset \(damage.offset)") && "\(e)".contains("recover"), "\(e)",
                    sourceLocation: sourceLocation)
            return damage
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test func flippedByteInRecord10Of21RefusesToOpenNamesTheLossAndKeepsTheFile() async throws {
        let dir = TemporaryDirectory("wal-flip")
        let ids = try await writeLog(dir, records: 21)
        let file = walFiles(dir).last!
        let recs = try records(file)
        #expect(recs.count == 21)
        try flip(file, at: recs[9].offset + recs[9].length / 2) // inside record 10's payload
        let before = try FileIO.read(file)
        let events = Events()
        let shard = try await Shard.open(directory: dir.path, options: options(events))
        let damage = expectRefused(shard, file: (file as NSString).lastPathComponent, offset: recs[9].offset, lost: 11)
        #expect(damage?.lsnsAfter == recs[10].lsn...recs[20].lsn)
        #expect(damage?.bytesAfter == recs[20].offset + recs[20].length - recs[9].offset)
        // The other collection serves; the shard shows the refused one.
        #expect(try shard.collection("other").count == 5)
        #expect(shard.refusedCollections.map(\.name) == ["c"])
        #expect(events.all.contains { $0.kind == .walDamageRefused && $0.collection == "c" && $0.message.contains("offset") })
        await #expect(throws: StorageError.self) {
            try await shard.createCollection(CollectionSchema(name: "c", dimension: Self.dim, metric: .l2))
        }
        await shard.close()
        #expect(try FileIO.read(file) == before, "a refused collection's files are not touched")

        // The operator accepts the loss: records 10...21 go, the damaged file is kept aside.
        let accepted = try await Shard.open(directory: dir.path, options: options(events, accept: true))
        let c = try accepted.collection("c")
        #expect(c.count == 9 * 5)
        for r in 0..<9 { for id in ids[r] { #expect(c.get(id) != nil) } }
        for r in 9..<21 { for id in ids[r] { #expect(c.get(id) == nil) } }
        #expect(c.recovery.acceptedLoss?.recordsAfter == 11)
        #expect(events.all.contains { $0.kind == .walDamageAccepted })
        let aside = FileIO.list(dir.path + "/collections/c/wal").filter { $0.contains(".damaged-") }
        #expect(aside.count == 1)
        #expect(try FileIO.read(dir.path + "/collections/c/wal/" + aside[0]) == before, "the damaged file is kept as it was")
        try await c.upsert(points(50))
        await accepted.close()
        // Afterwards the collection opens normally, with the write made after the cut.
        let again = try await Shard.open(directory: dir.path, options: options())
        #expect(try again.collection("c").count == 9 * 5 + 5)
        #expect(try again.collection("c").recovery.damage.isEmpty)
        await again.close()
    }

    /// An accepted loss that crashed after setting the damaged file aside and before renaming
    /// its valid prefix into place: the next open puts the prefix back, nothing before the
    /// damage is lost.
    @Test func anAcceptedLossInterruptedBetweenItsRenamesKeepsThePrefix() async throws {
        let dir = TemporaryDirectory("wal-prefix")
        let ids = try await writeLog(dir, records: 6)
        let file = walFiles(dir).last!
        let recs = try records(file)
        let bytes = try FileIO.read(file)
        // The state the crash leaves: `<file>.prefix` (records 1...3) and the damaged file aside.
        try FileIO.writeFile(file + WriteAheadLog.prefixSuffix, Array(bytes[0..<recs[3].offset]))
        #expect(rename(file, file + ".damaged-1") == 0)
        let shard = try await Shard.open(directory: dir.path, options: options())
        let c = try shard.collection("c")
        #expect(c.count == 3 * 5)
        for r in 0..<3 { for id in ids[r] { #expect(c.get(id) != nil) } }
        #expect(!FileIO.exists(file + WriteAheadLog.prefixSuffix))
        await shard.close()
    }

    @Test func fourKiBOfZerosAtARecordStartIsDamageNotACleanEnd() async throws {
        let dir = TemporaryDirectory("wal-zeros")
        try await writeLog(dir, records: 21, pointsPerRecord: 40) // records of about 1.7 KiB
        let file = walFiles(dir).last!
        let recs = try records(file)
        var bytes = try FileIO.read(file)
        for i in recs[9].offset..<(recs[9].offset + 4096) { bytes[i] = 0 }
        try FileIO.writeFile(file, bytes)
        let shard = try await Shard.open(directory: dir.path, options: options())
        let damage = expectRefused(shard, file: (file as NSString).lastPathComponent, offset: recs[9].offset)
        #expect((damage?.recordsAfter ?? 0) >= 8, "the records after the zeroed block are counted as lost")
        #expect(damage?.reason.contains("zeros") == true)
        await shard.close()
    }

    @Test func flippedByteInTheFileHeaderRefusesInsteadOfDeletingTheFile() async throws {
        let dir = TemporaryDirectory("wal-header")
        try await writeLog(dir, records: 21)
        let file = walFiles(dir).last!
        try flip(file, at: 20)
        let size = FileIO.fileSize(file)
        let shard = try await Shard.open(directory: dir.path, options: options())
        let damage = expectRefused(shard, file: (file as NSString).lastPathComponent, offset: 0, lost: 21)
        #expect(damage?.reason.contains("header") == true)
        await shard.close()
        #expect(FileIO.fileSize(file) == size, "the file is still there, whole")
    }

    @Test func damageInAnEarlierFileIsNotCutWhileALaterFileIsReplayed() async throws {
        let dir = TemporaryDirectory("wal-two-files")
        // 64 KiB files rotate after about 40 records of 1.7 KiB; the last record deletes a point.
        let ids = try await writeLog(dir, records: 60, pointsPerRecord: 40, deleteLast: "b0-0")
        let files = walFiles(dir)
        #expect(files.count >= 2)
        let first = try records(files[0])
        // Damage the first file's last record: nothing valid follows in that file, but the
        // later file holds acknowledged writes (among them the delete).
        try flip(files[0], at: first.last!.offset + 30)
        let shard = try await Shard.open(directory: dir.path, options: options())
        let damage = expectRefused(shard, file: (files[0] as NSString).lastPathComponent, offset: first.last!.offset)
        #expect(damage?.laterFiles.isEmpty == false)
        #expect(damage?.recordsAfter == 60 + 1 - first.count, "61 records, the damaged one unreadable: \(String(describing: damage))")
        await shard.close()
        // Accepting the loss keeps a consistent prefix: the later file is not replayed, so
        // nothing written after the damage (the delete included) shows up half-applied.
        let accepted = try await Shard.open(directory: dir.path, options: options(accept: true))
        let c = try accepted.collection("c")
        #expect(c.count == (first.count - 1) * 40)
        #expect(c.get(ids[0][0]) != nil, "the state is the prefix before the damage")
        #expect(FileIO.list(dir.path + "/collections/c/wal").filter { $0.contains(".damaged-") }.count == files.count)
        await accepted.close()
    }

    @Test func zerosOverTheEndOfAnEarlierFileAreAnLSNGapNotACleanEnd() async throws {
        let dir = TemporaryDirectory("wal-gap")
        try await writeLog(dir, records: 60, pointsPerRecord: 40)
        let files = walFiles(dir)
        #expect(files.count >= 2)
        let first = try records(files[0])
        // The first file's last record and everything after it read as zeros (its room):
        // the scanner sees a clean end there, but the next file starts one LSN later.
        var bytes = try FileIO.read(files[0])
        for i in first.last!.offset..<bytes.count { bytes[i] = 0 }
        try FileIO.writeFile(files[0], bytes)
        let shard = try await Shard.open(directory: dir.path, options: options())
        let damage = expectRefused(shard, file: (files[1] as NSString).lastPathComponent, offset: 0)
        #expect(damage?.reason.contains("records \(first.last!.lsn)...\(first.last!.lsn) are missing") == true,
                "\(String(describing: damage))")
        await shard.close()
    }

    @Test func anyCollectionThatCannotOpenIsRefusedAloneAndCanBeDropped() async throws {
        let dir = TemporaryDirectory("refused-manifest")
        try await writeLog(dir, records: 3)
        try FileIO.writeFile(dir.path + "/collections/c/MANIFEST", Array("not a manifest".utf8))
        let events = Events()
        let shard = try await Shard.open(directory: dir.path, options: options(events))
        #expect(throws: StorageError.corrupt(path: dir.path + "/collections/c/MANIFEST", reason: "not a manifest (bad magic or too short)")) {
            try shard.collection("c")
        }
        #expect(try shard.collection("other").count == 5)
        #expect(events.all.contains { $0.kind == .collectionRefused && $0.collection == "c" })
        try await shard.dropCollection("c")
        #expect(shard.refusedCollections.isEmpty && !FileIO.exists(dir.path + "/collections/c"))
        await shard.close()
    }

    @Test func tornTailIsStillCutSilentlyAndLoggedAsATailCut() async throws {
        let dir = TemporaryDirectory("wal-torn")
        let ids = try await writeLog(dir, records: 10)
        let file = walFiles(dir).last!
        let recs = try records(file)
        var bytes = try FileIO.read(file)
        bytes = Array(bytes[0..<(recs[9].offset + recs[9].length / 2)]) // the last write torn
        try FileIO.writeFile(file, bytes)
        let events = Events()
        let shard = try await Shard.open(directory: dir.path, options: options(events))
        let c = try shard.collection("c")
        #expect(c.count == 45)
        for id in ids[8] { #expect(c.get(id) != nil) }
        #expect(c.recovery.damage.count == 1 && c.recovery.acceptedLoss == nil)
        #expect(events.all.map(\.kind) == [.walTailCut])
        await shard.close()
    }

    @Test("the tail planner: zeros are room, a torn tail is cut, records behind damage are damage")
    func tailDecisions() {
        let none = WALRecordsFound()
        var some = WALRecordsFound()
        some.count = 2
        some.firstLSN = 5
        some.lastLSN = 6
        #expect(WALTailDecision.decide(path: "f", validLength: 100, damage: nil, after: none, later: []) == .cleanEnd)
        #expect(WALTailDecision.decide(path: "f", validLength: 100, damage: nil, after: none,
                                       later: [("g", some)]) == .cleanEnd, "a rotated file's room")
        #expect(WALTailDecision.decide(path: "f", validLength: 100, damage: "torn", after: none, later: []) == .cutTornTail)
        #expect(WALTailDecision.decide(path: "f", validLength: 0, damage: "header", after: none, later: []) == .cutTornTail)
        guard case let .damage(d) = WALTailDecision.decide(path: "f", validLength: 100, damage: "checksum",
                                                           after: some, later: [("g", some)]) else {
            Issue.record("records after the damage must make it damage")
            return
        }
        #expect(d.recordsAfter == 4 && d.lsnsAfter == 5...6 && d.laterFiles == ["g"])
        if case .damage = WALTailDecision.decide(path: "f", validLength: 100, damage: "torn", after: none,
                                                 later: [("g", some)]) {} else {
            Issue.record("a torn end followed by a file with records is damage")
        }
    }
}
