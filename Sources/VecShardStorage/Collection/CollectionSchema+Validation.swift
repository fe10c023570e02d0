/// Validation without writing, so that a router can refuse a whole batch before it fans the batch
/// out to several shards (a bad point must change nothing anywhere).
extension CollectionSchema {
    /// Checks a batch exactly as `ShardCollection.upsert` does.
    public func validate(points: [Point]) throws {
        try PointValidation.check(points: points, schema: self)
    }

    /// Checks a query vector exactly as `ShardCollection.search` does.
    public func validate(query: [Float]) throws {
        try PointValidation.check(vector: query, schema: self, pointID: nil)
    }

    /// Checks a metadata filter (filterable value types, non-empty IN lists).
    public static func validate(filter: MetadataFilter) throws {
        try PointValidation.check(filter: filter)
    }

    /// Checks an id for get and delete.
    public static func validate(pointID: String) throws {
        try PointValidation.check(id: pointID)
    }
}
