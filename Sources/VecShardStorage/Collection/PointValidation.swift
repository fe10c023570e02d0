import VecShardEngine

/// Input checks run before anything is logged, so a record in the WAL always applies.
enum PointValidation {
    static func check(id: String) throws {
        if id.isEmpty { throw StorageError.invalidPointID(id, reason: "it is empty") }
        let n = id.utf8.count
        if n > PointLimits.maxPointIDBytes {
            throw StorageError.invalidPointID(id, reason: "\(n) bytes of UTF-8; the limit is \(PointLimits.maxPointIDBytes)")
        }
    }

    static func check(vector: [Float], schema: CollectionSchema, pointID: String?) throws {
        guard vector.count == schema.dimension else {
            throw StorageError.dimensionMismatch(collection: schema.name, got: vector.count, expected: schema.dimension, pointID: pointID)
        }
        var nonZero = false
        for (i, x) in vector.enumerated() {
            guard x.isFinite else { throw StorageError.nonFiniteComponent(pointID: pointID, component: i) }
            if x != 0 { nonZero = true }
        }
        if schema.metric == .cosine && !nonZero { throw StorageError.zeroVector(pointID: pointID) }
    }

    static func check(metadata: Metadata, pointID: String) throws {
        func bad(_ reason: String) -> StorageError { .invalidMetadata(pointID: pointID, reason: reason) }
        if metadata.count > PointLimits.maxMetadataFields {
            throw bad("has \(metadata.count) fields; the limit is \(PointLimits.maxMetadataFields)")
        }
        for (key, value) in metadata {
            if key.isEmpty { throw bad("has an empty key") }
            if key.utf8.count > PointLimits.maxMetadataKeyBytes {
                throw bad("key '\(key.prefix(32))…' is \(key.utf8.count) bytes; the limit is \(PointLimits.maxMetadataKeyBytes)")
            }
            switch value {
            case let .string(s) where s.utf8.count > PointLimits.maxMetadataStringBytes:
                throw bad("'\(key)' is a string of \(s.utf8.count) bytes; the limit is \(PointLimits.maxMetadataStringBytes)")
            case let .double(d) where !d.isFinite:
                throw bad("'\(key)' is NaN or infinite; numbers must be finite")
            default: break
            }
        }
    }

    static func check(points: [Point], schema: CollectionSchema) throws {
        if points.count > PointLimits.maxBatchPoints {
            throw StorageError.batchTooLarge(count: points.count, limit: PointLimits.maxBatchPoints)
        }
        for p in points {
            try check(id: p.id)
            try check(vector: p.vector, schema: schema, pointID: p.id)
            try check(metadata: p.metadata, pointID: p.id)
        }
    }

    static func check(filter: MetadataFilter) throws {
        for (field, condition) in filter {
            for value in condition.values where !value.isFilterable {
                throw StorageError.invalidFilter("field '\(field)': \(value) is a float; filters take strings, ints and bools")
            }
        }
    }
}
