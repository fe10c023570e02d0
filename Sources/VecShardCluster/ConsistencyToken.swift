import Foundation
import VecShardSchema
import VecShardShardAPI

/// A read-your-writes token: the versions a write produced per shard, bound to its collection.
/// A write's answer carries one; a search or get that passes it back is answered only by
/// replicas that have reached those versions (docs/ARCHITECTURE.md, "Reads").
///
/// Text form: `vst1.` + base64url (no padding) of `<collection>\n<shard>=<version>\n...`. Tokens
/// of several writes merge by taking the higher version per shard.
public struct ConsistencyToken: Sendable, Equatable {
    public var collection: String
    public var versions: [String: UInt64]

    public init(collection: String, versions: [String: UInt64]) {
        (self.collection, self.versions) = (collection, versions)
    }

    static let prefix = "vst1."
    /// Longest token text accepted (a topology has at most a few thousand shards).
    static let maxLength = 256 * 1024

    public var text: String {
        var body = collection + "\n"
        for (shard, version) in versions.sorted(by: { $0.key < $1.key }) { body += "\(shard)=\(version)\n" }
        let base64 = Data(body.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return Self.prefix + base64
    }

    /// Parses a token given for `collection`; the error names the field and the problem.
    public init(text: String, field: String, collection expected: String) throws {
        func bad(_ why: String) -> ShardCallError {
            ShardCallError(.invalidArgument, .invalidConsistencyToken, "field \(field) \(why)")
        }
        guard text.utf8.count <= Self.maxLength else { throw bad("is longer than \(Self.maxLength) bytes") }
        guard text.hasPrefix(Self.prefix) else { throw bad("is not a consistency token (it starts with \(Self.prefix), as write responses give it)") }
        var base64 = String(text.dropFirst(Self.prefix.count)).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let body = String(data: data, encoding: .utf8) else {
            throw bad("is not a consistency token (its body is not base64url text)")
        }
        var lines = body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.last == "" else { throw bad("is not a consistency token (truncated)") }
        lines.removeLast()
        guard let collection = lines.first, !collection.isEmpty else { throw bad("is not a consistency token (no collection)") }
        guard collection == expected else {
            throw bad("belongs to collection '\(collection)', not '\(expected)'")
        }
        var versions: [String: UInt64] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let version = UInt64(parts[1]) else {
                throw bad("is not a consistency token (entry '\(line.prefix(40))')")
            }
            versions[parts[0]] = max(versions[parts[0]] ?? 0, version)
        }
        self.init(collection: collection, versions: versions)
    }
}
