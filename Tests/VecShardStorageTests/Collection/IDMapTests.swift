import Testing
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("Id map")
struct IDMapTests {
    struct Entry: Equatable {
        var location: RowLocation
        var version: UInt64
        init(location: RowLocation, version: UInt64) { (self.location, self.version) = (location, version) }
        init(_ pair: (location: RowLocation, version: UInt64)) { (location, version) = pair }
    }

    /// A random mix of inserts, replacements, deletes and look-ups, checked against a
    /// Dictionary after every step; few distinct ids so that clusters form, deletes shift
    /// entries back, and the table grows several times.
    @Test("agrees with a Dictionary through inserts, replacements, deletes and growth")
    func matchesDictionary() {
        var rng = SplitMix64(seed: 42)
        for keySpace in [40, 3000] {
            var map = IDMap()
            var reference: [String: Entry] = [:]
            for step in 0..<20_000 {
                let key = "k\(rng.next() % UInt64(keySpace))"
                let value = Entry(location: RowLocation(segment: rng.next() % 5, row: UInt32(step)), version: rng.next())
                switch rng.next() % 10 {
                case 0..<5:
                    #expect(map.updateValue(value.location, version: value.version, forKey: key).map(Entry.init)
                            == reference.updateValue(value, forKey: key))
                case 5..<8:
                    #expect(map.removeValue(forKey: key).map(Entry.init) == reference.removeValue(forKey: key))
                case 8:
                    let moved = RowLocation(segment: 9, row: UInt32(step))
                    map.relocate(key, to: moved)
                    reference[key]?.location = moved
                default:
                    #expect(map.entry(key).map(Entry.init) == reference[key])
                    #expect(map.version(of: key) == reference[key]?.version)
                }
                #expect(map.count == reference.count)
            }
            var seen: [String: Entry] = [:]
            map.forEach { seen[$0] = Entry(location: $1, version: $2) }
            #expect(seen == reference)
            for (key, value) in reference { #expect(map[key] == value.location) }
            for key in reference.keys { map.removeValue(forKey: key) }
            #expect(map.count == 0 && map["k1"] == nil)
        }
    }

    @Test("ids that are not plain ASCII, and the empty table")
    func unusualKeys() {
        var map = IDMap()
        #expect(map["x"] == nil && map.removeValue(forKey: "x") == nil)
        let keys = ["é", "e\u{301}", "日本語", String(repeating: "z", count: 300), "🙂"]
        for (i, k) in keys.enumerated() { map.updateValue(RowLocation(segment: 1, row: UInt32(i)), version: UInt64(i), forKey: k) }
        for (i, k) in keys.enumerated() { #expect(map[k] == RowLocation(segment: 1, row: UInt32(i)), "\(k)") }
        #expect(map.count == keys.count, "ids are bytes: precomposed and decomposed é are two ids, as in placement")
    }
}
