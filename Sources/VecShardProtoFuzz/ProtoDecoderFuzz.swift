import VecShardProto

/// Feeds one input to every decoder of the shard service's messages; the first byte picks which
/// decoder goes first, so the fuzzer steers towards each. Decoders may throw; they must never trap.
func decodeEverything(_ bytes: UnsafeRawBufferPointer) {
    guard let first = bytes.first else { return }
    let body = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
    let decoders: [(UnsafeRawBufferPointer) -> Void] = [
        { _ = try? SearchRequest(serializedBytes: $0) },
        { _ = try? UpsertRequest(serializedBytes: $0) },
        { _ = try? SearchResponse(serializedBytes: $0) },
        { _ = try? ScanRequest(serializedBytes: $0) },
        { _ = try? CollectionInfoMessage(serializedBytes: $0) },
        { _ = try? CreateCollectionRequest(serializedBytes: $0) },
        { _ = try? IDsRequest(serializedBytes: $0) },
        { _ = try? PointsResponse(serializedBytes: $0) },
        { _ = try? StatsResponse(serializedBytes: $0) },
        { _ = try? MaintainRequest(serializedBytes: $0) },
        { _ = try? ChangesRequest(serializedBytes: $0) },
        { _ = try? ChangesResponse(serializedBytes: $0) },
        { _ = try? SyncRequest(serializedBytes: $0) },
        { _ = try? WriteResponse(serializedBytes: $0) },
        { _ = try? ApplyRequest(serializedBytes: $0) },
    ]
    let start = Int(first) % decoders.count
    for i in 0..<decoders.count { decoders[(start + i) % decoders.count](body) }
}

#if FUZZING
/// libFuzzer entry point (`make fuzz` builds this with `--sanitize=fuzzer -Xswiftc -DFUZZING`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtoDecoders(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    decodeEverything(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
import Foundation

/// Without the fuzzer: replays corpus files given as arguments (a crash reproducer runner).
@main
struct ProtoDecoderReplay {
    static func main() throws {
        for path in CommandLine.arguments.dropFirst() {
            let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            data.withUnsafeBytes { decodeEverything($0) }
            print("ok \(path)")
        }
    }
}
#endif
