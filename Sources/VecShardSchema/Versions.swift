#if canImport(Glibc)
import Glibc
#endif

/// The version every write carries (docs/ARCHITECTURE.md, "Versioned points and in-sync
/// replicas"): a hybrid logical clock, microseconds since the Unix epoch times 256 plus an
/// 8-bit tag of the process that stamped it (so two routers stamping in the same microsecond
/// still give different versions). A new version is above the wall clock and above the last
/// version its stamper stamped or saw, so versions of one stamper only grow, and a write
/// issued after another was acknowledged (its version seen) gets a higher one.
///
/// Version 0 is "no version": points and deletes written before versions existed.
public enum WriteVersion {
    /// The wall clock as a version with tag 0.
    public static func wallClock() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let micros = UInt64(ts.tv_sec) &* 1_000_000 &+ UInt64(ts.tv_nsec / 1000)
        return micros << 8
    }

    /// A version above `last` and not below the wall clock, with `tag` in its low 8 bits.
    public static func next(after last: UInt64, tag: UInt8) -> UInt64 {
        let wall = wallClock() | UInt64(tag)
        if wall > last { return wall }
        return (((last >> 8) &+ 1) << 8) | UInt64(tag)
    }

    /// Microseconds of a version's clock (its time, for margins and lag).
    public static func micros(_ version: UInt64) -> UInt64 { version >> 8 }

    /// A span of the clock as a version difference.
    public static func span(seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1_000_000) << 8 }

    /// A version difference in seconds of the clock.
    public static func seconds(_ difference: UInt64) -> Double { Double(difference >> 8) / 1_000_000 }

    /// A random tag for a stamping process.
    public static func randomTag() -> UInt8 { UInt8.random(in: 1 ... .max) }
}

/// A streamed part of a collection's changes after a version (catch-up by difference): live
/// points written after it, with their versions, and ids deleted after it, with the versions
/// of their deletes.
public struct VersionedChanges: Sendable, Equatable {
    public var points: [Point]
    public var versions: [UInt64]
    public var deletedIDs: [String]
    public var deletedVersions: [UInt64]

    public init(points: [Point] = [], versions: [UInt64] = [], deletedIDs: [String] = [], deletedVersions: [UInt64] = []) {
        self.points = points
        self.versions = versions
        self.deletedIDs = deletedIDs
        self.deletedVersions = deletedVersions
    }

    public var isEmpty: Bool { points.isEmpty && deletedIDs.isEmpty }
    public var count: Int { points.count + deletedIDs.count }
}
