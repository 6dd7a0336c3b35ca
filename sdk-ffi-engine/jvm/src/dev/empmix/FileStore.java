package dev.empmix;

import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine's storage in an app's data folder: {@code state} (the last state record, replaced
 * atomically) and {@code events.log}, an append-only log of lines {@code A<TAB>id<TAB>record}
 * and {@code R<TAB>id,id,...}. A line is applied with one {@code write(2)}, so an event is
 * durable against the process being killed once {@link #apply} of its append returned, and
 * against power loss after {@link #sync}. A torn last line (a write cut short) has no newline
 * and is ignored. At open the log is rewritten with only the live records, which also drops
 * records the engine cannot read (the engine never names those in a removal).
 */
final class FileStore implements AutoCloseable {
    private final Path dir;
    private final Path log;
    private final Map<String, String> live = new LinkedHashMap<>();
    private String state;
    private FileOutputStream out;
    private long lines;

    FileStore(Path dir) throws IOException {
        this.dir = dir;
        this.log = dir.resolve("events.log");
        Files.createDirectories(dir);
        Path statePath = dir.resolve("state");
        if (Files.exists(statePath)) {
            state = Files.readString(statePath, StandardCharsets.UTF_8);
        }
        if (Files.exists(log)) {
            byte[] bytes = Files.readAllBytes(log);
            int start = 0;
            for (int i = 0; i < bytes.length; i++) {
                if (bytes[i] == '\n') {
                    replay(new String(bytes, start, i - start, StandardCharsets.UTF_8));
                    start = i + 1;
                }
            }
        }
        compact();
    }

    private void replay(String line) {
        String[] parts = line.split("\t", 3);
        if (parts.length == 3 && parts[0].equals("A")) {
            live.put(parts[1], parts[2]);
        } else if (parts.length == 2 && parts[0].equals("R")) {
            for (String id : parts[1].split(",")) {
                live.remove(id);
            }
        }
    }

    /** The stored state, or null. */
    String state() {
        return state;
    }

    /** The live records, in the order appended. */
    List<String> records() {
        return new ArrayList<>(live.values());
    }

    /** Applies one operation from {@code EngineNative.pollPersist}; throws when the disk refuses. */
    void apply(byte[][] op) throws IOException {
        switch (op[0][0]) {
            case EngineNative.PERSIST_APPEND: {
                String id = new String(op[1], StandardCharsets.UTF_8);
                // A raw newline in a JSON record is whitespace: a space means the same.
                String record = new String(op[2], StandardCharsets.UTF_8).replace('\n', ' ').replace('\r', ' ');
                write("A\t" + id + "\t" + record + "\n");
                live.put(id, record);
                break;
            }
            case EngineNative.PERSIST_REMOVE: {
                StringBuilder ids = new StringBuilder();
                for (int i = 1; i < op.length; i++) {
                    String id = new String(op[i], StandardCharsets.UTF_8);
                    ids.append(i > 1 ? "," : "").append(id);
                    live.remove(id);
                }
                write("R\t" + ids + "\n");
                if (lines > 2L * live.size() + 1000) {
                    compact();
                }
                break;
            }
            case EngineNative.PERSIST_SAVE_STATE: {
                state = new String(op[1], StandardCharsets.UTF_8);
                Path tmp = dir.resolve("state.tmp");
                Files.write(tmp, op[1]);
                Files.move(tmp, dir.resolve("state"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                break;
            }
            default:
                throw new IOException("unknown persistence operation " + op[0][0]);
        }
    }

    private void write(String line) throws IOException {
        out.write(line.getBytes(StandardCharsets.UTF_8));
        lines++;
    }

    /** Rewrites the log with only the live records. */
    private void compact() throws IOException {
        if (out != null) {
            out.close();
        }
        Path tmp = dir.resolve("events.log.tmp");
        ByteArrayOutputStream text = new ByteArrayOutputStream();
        for (Map.Entry<String, String> e : live.entrySet()) {
            text.write(("A\t" + e.getKey() + "\t" + e.getValue() + "\n").getBytes(StandardCharsets.UTF_8));
        }
        try (FileOutputStream f = new FileOutputStream(tmp.toFile())) {
            f.write(text.toByteArray());
            f.getFD().sync();
        }
        Files.move(tmp, log, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        out = new FileOutputStream(log.toFile(), true);
        lines = live.size();
    }

    /** Makes everything applied so far durable against power loss. */
    void sync() throws IOException {
        out.getFD().sync();
    }

    @Override
    public void close() throws IOException {
        sync();
        out.close();
    }
}
