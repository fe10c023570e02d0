import Foundation
import NIOCore
import Testing
import VecShardHTTP

/// `vecshard import` against a real `vecshard serve` process.
@Suite struct ImportTests {
    private func tool(_ arguments: [String]) async throws -> (Int32, String) {
        let result = try await runVecshard(arguments)
        return (result.status, result.output)
    }

    @Test func importsFvecsNpyAndJSONLinesAndResumes() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-import-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (server, port, _) = try await ProcessTests.startServer(dataDir: "\(root)/data")
        defer { if server.isRunning { server.terminate() } }
        let dim = 4, rows = 1000
        // .fvecs: per row an int32 dimension, then the floats.
        var fvecs = Data()
        for r in 0..<rows {
            withUnsafeBytes(of: Int32(dim).littleEndian) { fvecs.append(contentsOf: $0) }
            for j in 0..<dim { withUnsafeBytes(of: Float(r * dim + j).bitPattern.littleEndian) { fvecs.append(contentsOf: $0) } }
        }
        try fvecs.write(to: URL(fileURLWithPath: "\(root)/base.fvecs"))
        try Data((0..<rows).map { UInt8($0 % 5) }).write(to: URL(fileURLWithPath: "\(root)/categories.u8"))
        // .npy version 1.0, shape (300, 4), '<f4'.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (300, \(dim)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        npy.append(contentsOf: Array(header.utf8))
        for i in 0..<(300 * dim) { withUnsafeBytes(of: Float(i).bitPattern.littleEndian) { npy.append(contentsOf: $0) } }
        try npy.write(to: URL(fileURLWithPath: "\(root)/extra.npy"))
        try (0..<20).map { #"{"id":"j\#($0)","vector":[1,2,3,\#($0)],"metadata":{"source":"jsonl"}}"# }.joined(separator: "\n")
            .write(toFile: "\(root)/more.jsonl", atomically: true, encoding: .utf8)

        try await withClient { client in
            let api = JSONClient(client: client, peer: Peer(host: "127.0.0.1", port: port))
            _ = try await api.call("PUT", "/v1/collections/imp", ["dimension": dim, "metric": "l2", "index": ["type": "flat"]])
            let url = "http://127.0.0.1:\(port)"
            // An interrupted import (--limit stands in for the interruption) resumes where it stopped.
            let first = try await tool(["import", "--url", url, "--collection", "imp", "\(root)/base.fvecs", "--batch", "100",
                                        "--categories", "\(root)/categories.u8", "--limit", "450"])
            #expect(first.0 == 0, "\(first.1)")
            #expect(try String(contentsOfFile: "\(root)/base.fvecs.import-state", encoding: .utf8) == "450")
            #expect(try await api.call("GET", "/v1/collections/imp").json["count"] as? Int == 450)
            let second = try await tool(["import", "--url", url, "--collection", "imp", "\(root)/base.fvecs", "--batch", "100",
                                         "--categories", "\(root)/categories.u8"])
            #expect(second.0 == 0, "\(second.1)")
            #expect(second.1.contains("resuming at row 450"))
            #expect(second.1.contains("done: 1000/1000 rows"))
            #expect(!FileManager.default.fileExists(atPath: "\(root)/base.fvecs.import-state"))
            #expect(try await api.call("GET", "/v1/collections/imp").json["count"] as? Int == rows)
            let p7 = try await api.call("GET", "/v1/collections/imp/points/7")
            #expect(p7.json["vector"] as? [Double] == [28, 29, 30, 31])
            #expect((p7.json["metadata"] as? [String: Any])?["category"] as? Int == 2)
            let npyRun = try await tool(["import", "--url", url, "--collection", "imp", "\(root)/extra.npy", "--id-prefix", "n"])
            #expect(npyRun.0 == 0, "\(npyRun.1)")
            #expect(try await api.call("GET", "/v1/collections/imp/points/n299").json["vector"] as? [Double] == [1196, 1197, 1198, 1199])
            let jsonRun = try await tool(["import", "--url", url, "--collection", "imp", "\(root)/more.jsonl"])
            #expect(jsonRun.0 == 0, "\(jsonRun.1)")
            #expect(try await api.call("GET", "/v1/collections/imp").json["count"] as? Int == rows + 300 + 20)
            let refused = try await tool(["import", "--url", url, "--collection", "missing", "\(root)/more.jsonl"])
            #expect(refused.0 != 0 && refused.1.contains("404"))
        }
    }
}
