/// Every error of the vector engine. Messages name the offending value and the limit,
/// so a layer above can pass them to a client unchanged (they are all the caller's
/// fault except `io` and `corruptIndexFile`).
public enum EngineError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A vector or query has the wrong number of components.
    case dimensionMismatch(got: Int, expected: Int)
    /// A flat array of vectors whose length is not a multiple of the dimension.
    case ragged(floats: Int, dimension: Int)
    /// A component is NaN or infinite (`row` is the row within the call, `component` its index).
    case nonFiniteComponent(row: Int, component: Int)
    /// Under the cosine metric, a vector with no direction: its float32 squared norm is 0
    /// or below `Float.leastNormalMagnitude` (see `VectorCheck`), or overflows.
    case zeroVector(row: Int)
    /// A finite component whose float32 square overflows (|x| > `VectorCheck.maxComponentMagnitude`).
    case componentTooLarge(row: Int, component: Int)
    /// k outside 1...maxK.
    case invalidK(Int, max: Int)
    /// A construction or search parameter out of range; the message says which and why.
    case invalidParameter(String)
    /// The index would exceed its id space (UInt32 internal ids) or a size limit.
    case capacityExceeded(String)
    /// An IVF index that has no quantizer yet and was given too few vectors to train one.
    case notTrained(String)
    /// The file is not an index file, has an unsupported version, is truncated or corrupt.
    case corruptIndexFile(path: String, reason: String)
    /// The operating system refused a file operation.
    case io(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .dimensionMismatch(got, expected):
            return "dimension \(got), index expects \(expected)"
        case let .ragged(floats, dimension):
            return "\(floats) floats is not a whole number of vectors of dimension \(dimension)"
        case let .nonFiniteComponent(row, component):
            return "vector \(row) has a NaN or infinite component at index \(component); components must be finite"
        case let .zeroVector(row):
            return "vector \(row) is all zeros or too small (float32 squared norm below \(VectorCheck.minCosineSquaredNorm)), which has no cosine similarity; cosine needs a non-zero vector"
        case let .componentTooLarge(row, component):
            return "vector \(row) has a component at index \(component) whose float32 square overflows; components must be at most \(VectorCheck.maxComponentMagnitude) in magnitude"
        case let .invalidK(k, max):
            return "k \(k) is out of range; k must be between 1 and \(max)"
        case let .invalidParameter(message):
            return message
        case let .capacityExceeded(message):
            return message
        case let .notTrained(message):
            return message
        case let .corruptIndexFile(path, reason):
            return "index file \(path): \(reason)"
        case let .io(path, operation, errno):
            return "\(operation) \(path) failed (errno \(errno))"
        }
    }
}
