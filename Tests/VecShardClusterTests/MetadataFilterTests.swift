import Testing
import VecShardProto
import VecShardSchema
import VecShardShardAPI

/// The schema's filter tree: its shapes, what routing reads from it, and its wire form.
@Suite struct MetadataFilterTests {
    @Test func aMapLiteralIsAnAndOfFieldsInNameOrder() {
        let f: MetadataFilter = ["b": .equals(.int(1)), "a": .oneOf([.string("x"), .string("y")])]
        #expect(f == .all([.field("a", .oneOf([.string("x"), .string("y")])), .field("b", .equals(.int(1)))]))
        #expect(!f.isEmpty)
        #expect(([:] as MetadataFilter).isEmpty && MetadataFilter.all([.all([])]).isEmpty)
    }

    @Test func routingFindsTheShardKeyOnlyWhereEveryMatchMustMeetIt() {
        let f: MetadataFilter = .all([.field("year", .equals(.int(3))), .all([.field("tenant", .equals(.string("t1")))])])
        #expect(f.requiredCondition(on: "tenant") == .equals(.string("t1")))
        #expect(f.requiredCondition(on: "missing") == nil)
    }

    @Test func theWireCarriesAnAndOfOneConditionPerField() throws {
        let f: MetadataFilter = .all([.field("a", .equals(.int(1))), .all([.field("b", .oneOf([.bool(true), .bool(false)]))])])
        let message = try #require(try f.message())
        #expect(message.must == ["a": [.int(1)], "b": [.bool(true), .bool(false)]])
        #expect(message.schemaFilter == ["a": .equals(.int(1)), "b": .oneOf([.bool(true), .bool(false)])])
        #expect(try MetadataFilter.all([]).message() == nil)
        // The same field twice is not one condition per field: refused before it is sent.
        #expect(throws: SchemaError.self) { try MetadataFilter.all([.field("a", .equals(.int(1))), .field("a", .equals(.int(2)))]).message() }
    }
}
