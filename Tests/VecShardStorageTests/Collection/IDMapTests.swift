import Testing
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("Id map")
struct IDMapTests {
    /// A random mix of inserts, replacements, deletes and look-ups, checked against a
    /// Dictionary after every step; few distinct ids so that clusters form, deletes shift
    /// entries back, and the table grows several times.
    @Test("agrees with a Dictionary through inserts, replacements, deletes and growth")
    func matchesDictionary() {
        var rng = SplitMix64(seed: 42)
        for keySpace in [40, 3000] {
            var map = IDMap()
            var reference: [String: RowLocation] = [:]
            for step in 0..<20_000 {
                let key = "k\(rng.next() % UInt64(keySpace))"
                let value = RowLocation(segment: rng.next() % 5, row: UInt32(step))
                switch rng.next() % 10 {
                case 0..<5:
                    #expect(map.updateValue(value, forKey: key) == reference.updateValue(value, forKey: key))
                case 5..<8:
                    #expect(map.removeValue(forKey: key) == reference.removeValue(forKey: key))
                case 8:
                    map[key] = value
                    reference[key] = value
                default:
                    #expect(map[key] == reference[key])
                }
                #expect(map.count == reference.count)
            }
            var seen: [String: RowLocation] = [:]
            map.forEach { seen[$0] = $1 }
            #expect(seen == reference)
            for (key, value) in reference { #expect(map[key] == value) }
            for key in reference.keys { map[key] = nil }
            #expect(map.count == 0 && map["k1"] == nil)
        }
    }

    @Test("ids that are not plain ASCII, and the empty table")
    func unusualKeys() {
        var map = IDMap()
        #expect(map["x"] == nil && map.removeValue(forKey: "x") == nil)
        let keys = ["é", "e\u{301}", "日本語", String(repeating: "z", count: 300), "🙂"]
        for (i, k) in keys.enumerated() { map[k] = RowLocation(segment: 1, row: UInt32(i)) }
        for (i, k) in keys.enumerated() { #expect(map[k] == RowLocation(segment: 1, row: UInt32(i)), "\(k)") }
        #expect(map.count == keys.count, "ids are bytes: precomposed and decomposed é are two ids, as in placement")
    }
}
