// EmpMixEngine.swift: driving libempmix_engine from an iOS app with URLSession.
//
// AN EXAMPLE, NOT COMPILED HERE: this repository has no Swift toolchain or Xcode project, so
// nothing builds or tests this file. It is the same driver as the tested JVM binding
// (sdk-ffi-engine/jvm/src/dev/empmix/EmpMix.java), written for URLSession, a file in
// Application Support and a DispatchSourceTimer; docs/mobile.md shows how to link the library.
//
// The module map exposing the C header:
//   module EmpMixEngine { header "empmix_engine.h"  link "empmix_engine"  export * }

import EmpMixEngine
import Foundation
import Security

final class EmpMix {
    private let engine: OpaquePointer
    private let queue = DispatchQueue(label: "empmix")   // every engine call runs here
    private let session = URLSession(configuration: .ephemeral)
    private var timer: DispatchSourceTimer?
    private let log: FileHandle?
    private var live: [String: String] = [:]            // event id → record, as in events.log
    private let dir: URL

    private static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    init?(ingestKey: String, endpoint: String) {
        dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
            .appendingPathComponent("empmix")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Storage: the same format as the JVM binding's FileStore (A<TAB>id<TAB>record, R<TAB>ids).
        let state = try? String(contentsOf: dir.appendingPathComponent("state"), encoding: .utf8)
        let logURL = dir.appendingPathComponent("events.log")
        if let text = try? String(contentsOf: logURL, encoding: .utf8) {
            for line in text.split(separator: "\n", omittingEmptySubsequences: true).dropLast(text.hasSuffix("\n") ? 0 : 1) {
                let parts = line.split(separator: "\t", maxSplits: 2).map(String.init)
                if parts.count == 3, parts[0] == "A" { live[parts[1]] = parts[2] }
                if parts.count == 2, parts[0] == "R" { parts[1].split(separator: ",").forEach { live[String($0)] = nil } }
            }
        }
        let compacted = live.map { "A\t\($0.key)\t\($0.value)\n" }.joined()
        try? compacted.write(to: logURL, atomically: true, encoding: .utf8)
        log = try? FileHandle(forWritingTo: logURL)
        log?.seekToEndOfFile()

        let config = empmix_engine_config_new()
        defer { empmix_engine_config_free(config) }
        _ = empmix_engine_config_set_ingest_key(config, ingestKey)
        _ = empmix_engine_config_set_endpoint(config, endpoint)
        _ = empmix_engine_config_set_persist(config, true)
        _ = empmix_engine_config_set_library(config, "empmix-swift", "0.1.0")
        _ = empmix_engine_config_set_os(config, UIDevice.current.systemName, UIDevice.current.systemVersion)
        var seed: UInt64 = 0
        _ = SecRandomCopyBytes(kSecRandomDefault, 8, &seed)
        let records = Array(live.values)
        var cRecords = records.map { UnsafePointer(strdup($0)) }
        defer { cRecords.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        var handle: OpaquePointer?
        guard empmix_engine_create(config, state, &cRecords, cRecords.count, EmpMix.now(), seed, &handle)
            == EMPMIX_OK.rawValue, let created = handle else { return nil }
        engine = created
        queue.sync { drive() }
    }

    // Commands: run the engine, then drive. Never wait on the network.
    func track(_ name: String, _ json: String? = nil) {
        queue.async { _ = empmix_engine_track(self.engine, EmpMix.now(), name, json); self.drive() }
    }

    func pageView(_ url: String, conference: String?) {
        queue.async { _ = empmix_engine_page_view(self.engine, EmpMix.now(), url, conference, nil); self.drive() }
    }

    func handleIncomingURL(_ url: URL) -> String {
        queue.sync {
            var clean: UnsafeMutablePointer<CChar>?
            _ = empmix_engine_handle_incoming_url(engine, EmpMix.now(), url.absoluteString, &clean)
            defer { empmix_engine_string_free(clean); drive() }
            return clean.map { String(cString: $0) } ?? url.absoluteString
        }
    }

    /// From `sceneDidEnterBackground`: everything waiting goes out inside a background task.
    func enterBackground() {
        let task = UIApplication.shared.beginBackgroundTask(withName: "empmix")
        queue.async {
            var request: UnsafeMutablePointer<EmpmixRequest>?
            while empmix_engine_poll_unload_transmit(self.engine, EmpMix.now(), 0, &request) == EMPMIX_OK.rawValue,
                  let r = request {
                self.send(r)
            }
            try? self.log?.synchronize()
            DispatchQueue.main.asyncAfter(deadline: .now() + 5) { UIApplication.shared.endBackgroundTask(task) }
        }
    }

    // Step 2 of the driver's contract: store, send, re-arm. On `queue`.
    private func drive() {
        var op: UnsafeMutablePointer<EmpmixPersistOp>?
        while empmix_engine_poll_persist(engine, &op) == EMPMIX_OK.rawValue, let o = op?.pointee {
            switch o.kind {
            case EMPMIX_PERSIST_APPEND:   // durable once written: one write(2) per line
                let id = String(cString: o.event_id), record = String(cString: o.data)
                    .replacingOccurrences(of: "\n", with: " ")
                live[id] = record
                log?.write("A\t\(id)\t\(record)\n".data(using: .utf8)!)
            case EMPMIX_PERSIST_REMOVE:
                let ids = (0..<o.event_id_count).map { String(cString: o.event_ids[$0]!) }
                ids.forEach { live[$0] = nil }
                log?.write("R\t\(ids.joined(separator: ","))\n".data(using: .utf8)!)
            default:                      // EMPMIX_PERSIST_SAVE_STATE
                try? String(cString: o.data).write(to: dir.appendingPathComponent("state"), atomically: true, encoding: .utf8)
            }
            empmix_engine_persist_op_free(op)
        }
        var request: UnsafeMutablePointer<EmpmixRequest>?
        while empmix_engine_poll_transmit(engine, EmpMix.now(), &request) == EMPMIX_OK.rawValue, let r = request {
            send(r)
        }
        var armed = false
        var at: UInt64 = 0
        _ = empmix_engine_poll_timeout(engine, EmpMix.now(), &armed, &at)
        timer?.cancel()
        timer = nil
        if armed {
            let t = DispatchSource.makeTimerSource(queue: queue)
            let delay = max(Int(at) - Int(EmpMix.now()), 5)
            t.schedule(deadline: .now() + .milliseconds(delay))
            t.setEventHandler { [weak self] in
                guard let self else { return }
                _ = empmix_engine_handle_timeout(self.engine, EmpMix.now())
                self.drive()
            }
            t.resume()
            timer = t
        }
    }

    /// Sends one request with URLSession; the answer comes back on `queue`.
    private func send(_ r: UnsafeMutablePointer<EmpmixRequest>) {
        let req = r.pointee
        var http = URLRequest(url: URL(string: String(cString: req.url))!, timeoutInterval: 10)
        http.httpMethod = String(cString: req.method)
        for i in 0..<req.header_count {
            http.setValue(String(cString: req.headers[i].value), forHTTPHeaderField: String(cString: req.headers[i].name))
        }
        http.httpBody = Data(bytes: req.body, count: req.body_len)
        let id = req.id
        empmix_engine_request_free(r)
        session.dataTask(with: http) { body, response, error in
            self.queue.async {
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0   // 0: no answer
                let retryAfter = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Retry-After")
                let bytes = [UInt8](body ?? Data())
                _ = empmix_engine_handle_response(self.engine, EmpMix.now(), id, UInt16(error == nil ? status : 0),
                                                  retryAfter, bytes, bytes.count)
                self.drive()
            }
        }.resume()
    }
}
