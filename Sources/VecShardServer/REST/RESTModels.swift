import VecShardEngine
import VecShardSchema
import VecShardShardAPI

/// Request bodies of the REST data API (openapi.yaml has their schemas and limits).

/// Limits of the data API, enforced before anything reaches a shard.
public enum APILimits {
    /// Points in one upsert request.
    public static let maxUpsertPoints = 10_000
    /// Ids in one delete request.
    public static let maxDeleteIDs = 10_000
    /// Queries in one batch search.
    public static let maxBatchQueries = 1_000
    /// k of one query.
    public static let maxK = SearchLimits.maxK
    /// Oversampling factor of approximate searches.
    public static let maxOversample = 100.0
    /// Results one search request may ask for: the sum of k over a batch's queries.
    public static let maxResultsPerRequest = SearchLimits.maxResultsPerRequest
    /// Largest search answer, in bytes of ids, scores, metadata and vectors.
    public static let maxResponseBytes = SearchLimits.maxResponseBytes
}

/// A JSON scalar of point metadata.
struct JSONScalar: Decodable {
    let value: MetadataValue

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { value = .bool(b); return }
        if let i = try? c.decode(Int64.self) { value = .int(i); return }
        if let d = try? c.decode(Double.self) { value = .double(d); return }
        if let s = try? c.decode(String.self) { value = .string(s); return }
        throw DecodingError.typeMismatch(JSONScalar.self, .init(codingPath: decoder.codingPath,
            debugDescription: "metadata values must be strings, numbers or booleans"))
    }
}

/// A filter value: one scalar (equality) or a list of scalars (IN).
struct FilterValue: Decodable {
    let values: [MetadataValue]

    init(from decoder: any Decoder) throws {
        if let list = try? [JSONScalar](from: decoder) {
            values = list.map(\.value)
        } else {
            values = [try JSONScalar(from: decoder).value]
        }
    }
}

struct CreateCollectionBody: Decodable {
    var dimension: Int
    var metric: String
    var index: IndexSpec?
    var shardKey: String?

    enum CodingKeys: String, CodingKey { case dimension, metric, index, shardKey = "shard_key" }
}

struct PointBody: Decodable {
    var id: String
    var vector: [Float]
    var metadata: [String: JSONScalar]?

    var point: Point {
        Point(id: id, vector: vector, metadata: (metadata ?? [:]).mapValues(\.value))
    }
}

struct UpsertBody: Decodable {
    var points: [PointBody]
}

struct DeleteBody: Decodable {
    var ids: [String]
}

// Counts (k, ef, nprobe, refine) are read as numbers and checked as whole numbers in range by
// `DataRoutes.wholeNumber`, so 1.5 or 2^63 get a message naming the field and the range.
struct SearchParamsBody: Decodable {
    var ef: Double?
    var nprobe: Double?
    var refine: Double?
    var oversample: Double?
    var exact: Bool?
}

struct SearchBody: Decodable {
    var vector: [Float]
    var k: Double?
    var filter: [String: FilterValue]?
    var params: SearchParamsBody?
    var includeVector: Bool?
    var includeMetadata: Bool?
    var allowPartial: Bool?
    var consistency: String?
    var consistencyToken: String?

    enum CodingKeys: String, CodingKey {
        case vector, k, filter, params, consistency
        case includeVector = "include_vector", includeMetadata = "include_metadata", allowPartial = "allow_partial"
        case consistencyToken = "consistency_token"
    }
}

struct BatchSearchBody: Decodable {
    var queries: [SearchBody]
    var allowPartial: Bool?
    var consistency: String?
    var consistencyToken: String?

    enum CodingKeys: String, CodingKey { case queries, consistency, allowPartial = "allow_partial", consistencyToken = "consistency_token" }
}
