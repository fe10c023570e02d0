// swift-tools-version:6.1
import PackageDescription

// Module layout. Each module imports only modules below it; the two programs of a cluster
// meet only at the ShardClient seam (VecShardShardAPI):
//   vecshard (executable)       command line: serve, recover, import, bench-*, storage-stress
//   VecShardServer              the service: REST routes, metrics, lifecycle; wires router and shards
//   VecShardBench               benchmark drivers (TEXMEX I/O, load generators)
//   VecShardTesting             fault injection and stress workloads (DelayedShard, the storage stress child)
//   VecShardShard               the shard service, the process that owns data: LocalShard, RepairableShard,
//                               the gRPC service, storage errors -> shard errors
//   VecShardCluster             the router: placement of writes, scatter-gather search, replicas, hedging;
//                               imports neither VecShardStorage nor VecShardShard
//   VecShardShardAPI            the seam: ShardClient, ShardCallError, the gRPC transport (RemoteShard) and the
//                               one conversion per direction between protobuf messages and the schema model
//   VecShardRouting             placement (XXH64 + rendezvous), topology and its validation: pure functions
//   VecShardRPC                 gRPC over the HTTP/2 stack: framing, status, deadlines; server and client
//   VecShardHTTP                HTTP/2 (nghttp2) + HTTP/1.1 (NIO) server and client, TLS (OpenSSL)
//   VecShardProto               hand-written protobuf codec and the shard service's messages (wire only)
//   VecShardStorage             a shard's collections: WAL, segments, manifest, metadata postings
//   VecShardSchema              the model router and storage share: point, metadata, filter, collection
//                               schema, limits, validation, SchemaError and ErrorKind
//   VecShardEngine              vectors in, neighbours out: kernels and indexes, no networking
//   VecShardPrimitives          locks, memory-mapped files, SplitMix64, XXH64, the score order
//   CNGHTTP2, COpenSSL, CVecKernels   C: system libraries and the SIMD kernels
let package = Package(
    name: "vecshard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vecshard", targets: ["vecshard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "VecShardHTTP",
            dependencies: [
                "CNGHTTP2",
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: [
                // Per-request hot path: the runtime exclusivity checks cost about 2% of a
                // /healthz request under h2load (perf); the compiler's static checks remain.
                .unsafeFlags(["-enforce-exclusivity=unchecked"]),
            ]
        ),
        .target(name: "VecShardProto"),
        // libFuzzer target for the protobuf decoders (`make fuzz`); without -DFUZZING it replays corpus files.
        .executableTarget(
            name: "VecShardProtoFuzz",
            dependencies: ["VecShardProto"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .target(name: "VecShardPrimitives"),
        .target(name: "VecShardRouting", dependencies: ["VecShardPrimitives"]),
        .target(name: "VecShardSchema", dependencies: ["VecShardEngine", "VecShardPrimitives"]),
        .target(
            name: "VecShardShardAPI",
            dependencies: ["VecShardSchema", "VecShardEngine", "VecShardProto", "VecShardRPC", "VecShardHTTP",
                           .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "VecShardCluster",
            dependencies: ["VecShardShardAPI", "VecShardSchema", "VecShardRouting", "VecShardRPC", "VecShardPrimitives"]
        ),
        .target(
            name: "VecShardShard",
            dependencies: ["VecShardShardAPI", "VecShardStorage", "VecShardSchema", "VecShardEngine", "VecShardProto", "VecShardRouting",
                           "VecShardRPC", "VecShardPrimitives"]
        ),
        .target(
            name: "VecShardTesting",
            dependencies: ["VecShardShardAPI", "VecShardStorage", "VecShardSchema", "VecShardEngine", "VecShardProto", "VecShardPrimitives"]
        ),
        .target(
            name: "VecShardRPC",
            dependencies: ["VecShardHTTP", "VecShardProto", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),
        .target(
            name: "VecShardEtcd",
            dependencies: ["VecShardRPC", "VecShardProto", "VecShardHTTP", "VecShardRouting", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(name: "CVecKernels"),
        .target(
            name: "VecShardEngine",
            dependencies: ["CVecKernels", "VecShardPrimitives"],
            exclude: ["ALGO_PARAMS.md"]
        ),
        .target(
            name: "VecShardStorage",
            dependencies: ["VecShardSchema", "VecShardEngine", "VecShardPrimitives"]
        ),
        .target(
            name: "VecShardBench",
            dependencies: ["VecShardEngine", "VecShardSchema", "VecShardStorage", "VecShardTesting", "VecShardPrimitives"]
        ),
        .target(
            name: "VecShardServer",
            dependencies: [
                "VecShardHTTP",
                "VecShardCluster",
                "VecShardShard",
                "VecShardShardAPI",
                "VecShardTesting",
                "VecShardSchema",
                "VecShardStorage",
                "VecShardRouting",
                "VecShardProto",
                "VecShardEngine",
                "VecShardRPC",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        .executableTarget(
            name: "vecshard",
            dependencies: [
                "VecShardServer",
                "VecShardEtcd",
                "VecShardBench",
                "VecShardTesting",
                "VecShardSchema",
                "VecShardStorage",
                "VecShardCluster",
                "VecShardShard",
                "VecShardShardAPI",
                "VecShardRouting",
                "VecShardProto",
                "VecShardHTTP",
                "VecShardRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "VecShardHTTPTests", dependencies: [
            "VecShardHTTP",
            "VecShardPrimitives",
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "VecShardRoutingTests", dependencies: ["VecShardRouting"]),
        .testTarget(name: "VecShardEtcdTests", dependencies: ["VecShardEtcd", "VecShardRPC", "VecShardHTTP", "VecShardRouting", "VecShardTesting",
                                                            .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "VecShardClusterTests", dependencies: ["VecShardCluster", "VecShardShard", "VecShardShardAPI", "VecShardSchema", "VecShardStorage",
                                                               "VecShardProto", "VecShardRouting", "VecShardTesting", "VecShardPrimitives"]),
        .testTarget(name: "VecShardShardTests", dependencies: ["VecShardShard", "VecShardShardAPI", "VecShardSchema", "VecShardStorage", "VecShardEngine",
                                                            "VecShardTesting"]),
        .testTarget(name: "VecShardProtoTests", dependencies: ["VecShardProto", "VecShardPrimitives"], exclude: ["Interop"]),
        .testTarget(name: "VecShardRPCTests", dependencies: [
            "VecShardRPC", "VecShardHTTP", "VecShardProto", "VecShardCluster", "VecShardShard", "VecShardShardAPI", "VecShardSchema",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], exclude: ["Interop"]),
        .testTarget(name: "VecShardEngineTests", dependencies: ["VecShardEngine", "CVecKernels", "VecShardPrimitives"]),
        .testTarget(name: "VecShardStorageTests", dependencies: [
            "VecShardStorage",
            "VecShardSchema",
            "VecShardPrimitives",
            "VecShardTesting",
            "vecshard", // the storage-stress child process of the crash tests
        ]),
        .testTarget(name: "VecShardServerTests", dependencies: [
            "VecShardServer",
            "VecShardStorage", // storage options of the in-process service (collection limit)
            "VecShardHTTP",
            "VecShardEngine",
            "VecShardCluster",
            "VecShardShard",
            "VecShardShardAPI",
            "VecShardSchema",
            "VecShardTesting",
            "VecShardPrimitives",
            "VecShardProto",
            "VecShardRPC",
            "vecshard", // built for the end-to-end process tests
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"), // the reference rendering of the request metrics
        ]),
    ]
)
