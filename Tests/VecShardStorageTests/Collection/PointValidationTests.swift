import Testing
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("Point validation")
struct PointValidationTests {
    @Test("the eight-lane scan finds every non-finite value and tells zero vectors apart, at any length and position")
    func vectorScan() {
        for n in [1, 7, 8, 9, 16, 131, 768] {
            #expect(PointValidation.scan([Float](repeating: 0, count: n)) == (true, false))
            #expect(PointValidation.scan([Float](repeating: -0.0, count: n)) == (true, false), "-0 is zero")
            for position in Set([0, n / 2, n - 1]) {
                for bad in [Float.nan, .infinity, -.infinity, -Float.nan] {
                    var v = [Float](repeating: 1, count: n)
                    v[position] = bad
                    #expect(PointValidation.scan(v).finite == false, "\(bad) at \(position) of \(n)")
                }
                var tiny = [Float](repeating: 0, count: n)
                tiny[position] = .leastNonzeroMagnitude
                #expect(PointValidation.scan(tiny) == (true, true), "a subnormal is non-zero")
                tiny[position] = -.greatestFiniteMagnitude
                #expect(PointValidation.scan(tiny) == (true, true))
            }
        }
    }
}
