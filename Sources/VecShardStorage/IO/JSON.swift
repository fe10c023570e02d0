import Foundation

/// JSON with sorted keys, for the small descriptive files (segment.json, collection.json).
func encodeJSON<T: Encodable>(_ value: T) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    // Our own plain structs always encode.
    return Array(try! encoder.encode(value))
}

func decodeJSON<T: Decodable>(_ bytes: [UInt8], as: T.Type, path: String) throws -> T {
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch {
        throw StorageError.corrupt(path: path, reason: "does not decode: \(error)")
    }
}

func decodeJSONFile<T: Decodable>(_ path: String, as: T.Type) throws -> T {
    try decodeJSON(try FileIO.read(path), as: T.self, path: path)
}
