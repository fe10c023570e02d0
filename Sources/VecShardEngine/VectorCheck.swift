/// The one check of an input vector, with the arithmetic the engine stores it with:
/// every index (`VectorInput`) and storage's point validation call it, so a vector storage
/// accepts is a vector every index accepts (a vector refused only at seal time would wedge
/// the seal of its segment).
///
/// Refused, for every metric: a NaN or infinite component, and a component whose float32
/// square overflows to infinity (|x| > `maxComponentMagnitude`, about 1.8e19): scores and
/// norms of such a vector are infinite. Refused under cosine: a vector whose float32
/// squared norm (the sum of the components' float32 squares, in index order) is below
/// `Float.leastNormalMagnitude` (about 1.2e-38), which includes all-zero vectors and
/// vectors of subnormal or tiny components whose squares underflow to 0 (`[1e-30, 1e-30]`,
/// `[1e-45, 0]`): they have no direction to normalize to; or whose squared norm overflows.
public enum VectorCheck {
    /// The largest |component| accepted: its float32 square is still finite.
    public static let maxComponentMagnitude: Float = {
        // The rounded square root may square to infinity: step down to the largest that does not.
        var m = Float.greatestFiniteMagnitude.squareRoot()
        while !(m * m).isFinite { m = m.nextDown }
        return m
    }()
    /// The smallest float32 squared norm accepted under cosine.
    public static let minCosineSquaredNorm: Float = Float.leastNormalMagnitude

    /// Why a vector is refused.
    public enum Problem: Equatable, Sendable, CustomStringConvertible {
        /// Component `component` is NaN or infinite.
        case nonFinite(component: Int)
        /// |component| is above `maxComponentMagnitude`: its square overflows float32.
        case componentTooLarge(component: Int, value: Float)
        /// Under cosine: the float32 squared norm is below `minCosineSquaredNorm` (0 for an
        /// all-zero vector) or is infinite.
        case noDirection(squaredNorm: Float, allZero: Bool)

        public var description: String {
            switch self {
            case let .nonFinite(component):
                return "component \(component) is NaN or infinite; components must be finite"
            case let .componentTooLarge(component, value):
                return "component \(component)\(value.isFinite ? " is \(value), whose" : "'s") float32 square overflows; components must be at most \(VectorCheck.maxComponentMagnitude) in magnitude"
            case let .noDirection(squaredNorm, allZero):
                if allZero { return "the vector is all zeros, which has no cosine similarity" }
                if !squaredNorm.isFinite {
                    return "the vector's float32 squared norm overflows, so it cannot be normalized for cosine"
                }
                return "the vector's float32 squared norm is \(squaredNorm), below \(VectorCheck.minCosineSquaredNorm) (the smallest normal float32), so it has no cosine direction; scale it up"
            }
        }
    }

    /// The first problem of `v` under `metric`, or nil if an index accepts it.
    @inlinable
    public static func problem(_ v: UnsafeBufferPointer<Float>, metric: DistanceMetric) -> Problem? {
        var sumsq: Float = 0
        var allZero = true
        for c in 0..<v.count {
            let x = v[c]
            // One compare on the common path; NaN fails it too.
            if !(abs(x) <= maxComponentMagnitude) {
                return x.isFinite ? .componentTooLarge(component: c, value: x) : .nonFinite(component: c)
            }
            if x != 0 { allZero = false }
            sumsq += x * x
        }
        if metric == .cosine && !(sumsq >= minCosineSquaredNorm && sumsq.isFinite) {
            return .noDirection(squaredNorm: sumsq, allZero: allZero)
        }
        return nil
    }

    @inlinable
    public static func problem(_ v: [Float], metric: DistanceMetric) -> Problem? {
        v.withUnsafeBufferPointer { problem($0, metric: metric) }
    }
}
