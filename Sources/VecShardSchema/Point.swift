
/// One metadata value: the JSON scalar types a point's metadata may hold. Ints and
/// doubles are distinct (2021 is an int, 2021.0 a double): filters match on both type
/// and value.
public enum MetadataValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    /// The value as a topology's shard-key value → group map spells it (`books`, `2021`, `true`).
    public var shardKeyText: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "true" : "false"
        }
    }

    /// Bytes this value counts for in `PointLimits.maxMetadataBytes` and response budgets.
    public var byteCount: Int {
        switch self {
        case let .string(s): return s.utf8.count
        case .int, .double: return 8
        case .bool: return 1
        }
    }

    public var description: String {
        switch self {
        case let .string(s): return "\"\(s)\""
        case let .int(i): return String(i)
        case let .double(d): return String(d)
        case let .bool(b): return String(b)
        }
    }

    /// True for the types a filter (and the metadata index) supports: string, int, bool.
    public var isFilterable: Bool {
        if case .double = self { return false }
        return true
    }
}

/// A point's metadata: a flat map of keys to scalar values.
public typealias Metadata = [String: MetadataValue]

/// A point as stored: a string id (1...`maxPointIDBytes` bytes of UTF-8), a vector of the
/// collection's dimension (as given: not normalized, even under cosine) and metadata.
public struct Point: Sendable, Equatable {
    public var id: String
    public var vector: [Float]
    public var metadata: Metadata

    public init(id: String, vector: [Float], metadata: Metadata = [:]) {
        self.id = id
        self.vector = vector
        self.metadata = metadata
    }
}

/// The operator of one condition on a metadata field: the field equals the value, or equals
/// one of the values (IN). Values must be string, int or bool. New operators (ranges) are
/// new cases here; the one place that evaluates them is storage's `MetadataPostings`, the one
/// place that checks them is `Validation.swift`, and the wire has one conversion per direction.
public enum FilterCondition: Sendable, Hashable {
    case equals(MetadataValue)
    case oneOf([MetadataValue])

    /// The values the condition names (the candidates a posting-list look-up unions).
    public var values: [MetadataValue] {
        switch self {
        case let .equals(v): return [v]
        case let .oneOf(vs): return vs
        }
    }
}

/// A metadata filter: a tree of conditions on fields. Today's language is an AND of field
/// conditions (`all`); boolean combinations (any, not) are further cases of this enum, evaluated
/// where `all` is (storage's `MetadataPostings`), validated where it is (`Validation.swift`).
/// A point without the field of a condition does not match it. `all([])` (also written `[:]`)
/// admits every point.
public indirect enum MetadataFilter: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    /// Every child holds.
    case all([MetadataFilter])
    /// The field's value meets the condition.
    case field(String, FilterCondition)

    /// An AND of one condition per field (in field-name order, so equal maps give equal filters).
    public init(fields: [String: FilterCondition]) {
        self = .all(fields.sorted { $0.key < $1.key }.map { .field($0.key, $0.value) })
    }

    public init(dictionaryLiteral elements: (String, FilterCondition)...) {
        self.init(fields: Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    /// True when the filter admits every point.
    public var isEmpty: Bool {
        switch self {
        case let .all(children): return children.allSatisfy(\.isEmpty)
        case .field: return false
        }
    }

    /// The condition on `field` that every matching point must meet (a field condition at the
    /// top level of the AND), for routing: a filter that pins the shard key reaches its group only.
    public func requiredCondition(on field: String) -> FilterCondition? {
        switch self {
        case let .field(name, condition): return name == field ? condition : nil
        case let .all(children): return children.lazy.compactMap { $0.requiredCondition(on: field) }.first
        }
    }

    /// The filter as an AND of one condition per field (the shape the shard protocol carries),
    /// or nil when it is not one (nested `all`s are flattened; a field twice is not one).
    public var fieldConditions: [String: FilterCondition]? {
        switch self {
        case let .field(name, condition): return [name: condition]
        case let .all(children):
            var out: [String: FilterCondition] = [:]
            for child in children {
                guard let fields = child.fieldConditions else { return nil }
                for (name, condition) in fields {
                    guard out.updateValue(condition, forKey: name) == nil else { return nil }
                }
            }
            return out
        }
    }
}

extension Metadata {
    /// Bytes of keys and values, as `PointLimits.maxMetadataBytes` counts them.
    public var byteCount: Int { reduce(0) { $0 + $1.key.utf8.count + $1.value.byteCount } }
}

