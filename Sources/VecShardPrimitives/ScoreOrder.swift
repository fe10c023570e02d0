/// The one order of search results everywhere (an index's top-k, a shard's merge of its
/// segments, the router's merge of its shards): a higher score first (every metric scores
/// closer as higher), and among equal scores the smaller id, so every layer breaks ties the
/// same way and merged answers do not depend on which shard answered first.
public enum ScoreOrder {
    @inlinable @inline(__always)
    public static func precedes<ID: Comparable>(_ aScore: Float, _ aID: ID, _ bScore: Float, _ bID: ID) -> Bool {
        aScore != bScore ? aScore > bScore : aID < bID
    }
}
