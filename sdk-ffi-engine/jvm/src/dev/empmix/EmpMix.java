package dev.empmix;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.IntSupplier;

/**
 * EmpMix analytics for the JVM and Android, over libempmix_engine: the engine decides
 * (batching, retry, identity, sessions, share attribution, what to store), this class does the
 * IO the core's driver contract asks for. Requests go out with {@link HttpClient}, storage is
 * a {@link FileStore} in the app's data folder, and the one timer runs on a
 * {@link ScheduledExecutorService}.
 *
 * <p>Every method may be called from any thread. Commands never wait on the network: they run
 * the engine, write what it asks to store (so with a data folder an event is on disk when
 * {@link #track} returns), start the requests it asks for and re-arm the timer. Only
 * {@link #flush}, {@link #enterBackground} and {@link #shutdown} wait, up to their timeout.
 * Failures throw {@link EmpMixException} with the core's stable code.
 *
 * <pre>{@code
 * EmpMix analytics = new EmpMix.Builder("pk_live_…", "https://analytics.example")
 *         .dataDir(context.getFilesDir().toPath().resolve("empmix"))
 *         .app("Conference App", "2.4.0", "118").os("Android", Build.VERSION.RELEASE)
 *         .build();
 * analytics.pageView("app://conf/abc", "abc", null);
 * analytics.enterBackground(2000);   // from ON_STOP
 * analytics.shutdown(3000);
 * }</pre>
 */
public final class EmpMix implements AutoCloseable {
    /** Counters, as {@code EmpmixStats}. */
    public record Stats(long queued, long inFlight, long delivered, long retried, long droppedQueueFull,
            long droppedExpired, long droppedTooLarge, long droppedRejected, long droppedOptedOut,
            long droppedLost) {}

    /** A share link: its code and the URL carrying {@code _s=<code>}. */
    public record ShareLink(String code, String url) {}

    /** Every setting; {@link #build} checks them (in the library). */
    public static final class Builder {
        private final String ingestKey;
        private final String endpoint;
        private Path dataDir;
        private final long[] numbers = new long[9];
        private final boolean[] numberSet = new boolean[9];
        private String conferenceId, deviceModel, locale, timeZone;
        private String[] app, os;
        private long screen;
        private Duration requestTimeout = Duration.ofSeconds(10);

        /** The project's ingest key and the server's base URL. */
        public Builder(String ingestKey, String endpoint) {
            this.ingestKey = ingestKey;
            this.endpoint = endpoint;
        }

        /** Keep identity, attribution and unsent events in this folder (survives restarts and kills). */
        public Builder dataDir(Path dir) { this.dataDir = dir; return this; }
        /** Send when this many events are queued (default 20). */
        public Builder flushAt(int n) { return number(EngineNative.CONFIG_FLUSH_AT, n); }
        /** Send when the oldest unsent event waited this long (default 30 s). */
        public Builder flushInterval(Duration d) { return number(EngineNative.CONFIG_FLUSH_INTERVAL_MS, d.toMillis()); }
        /** Most events kept unsent (default 10,000). */
        public Builder maxQueue(int n) { return number(EngineNative.CONFIG_MAX_QUEUE, n); }
        /** First retry delay before jitter (default 1 s). */
        public Builder backoffBase(Duration d) { return number(EngineNative.CONFIG_BACKOFF_BASE_MS, d.toMillis()); }
        /** Longest retry delay before jitter (default 5 minutes). */
        public Builder backoffCap(Duration d) { return number(EngineNative.CONFIG_BACKOFF_CAP_MS, d.toMillis()); }
        /** The longest one request may take (default 10 s); a request that times out is retried. */
        public Builder requestTimeout(Duration d) { this.requestTimeout = d; return this; }
        /** Shares and share opens without a conference count under this one. */
        public Builder conferenceId(String id) { this.conferenceId = id; return this; }
        /** The app's name, version and build ({@code app}, {@code app_version}, {@code app_build}). */
        public Builder app(String name, String version, String build) { this.app = new String[] {name, version, build}; return this; }
        /** The OS as the app reports it ({@code os}, {@code os_version}). */
        public Builder os(String name, String version) { this.os = new String[] {name, version}; return this; }
        /** {@code device_model} in every event's context. */
        public Builder deviceModel(String model) { this.deviceModel = model; return this; }
        /** BCP 47 locale, {@code locale} in every event's context. */
        public Builder locale(String tag) { this.locale = tag; return this; }
        /** The screen size, {@code screen} in every event's context. */
        public Builder screen(int width, int height) { this.screen = ((long) width << 32) | (height & 0xFFFFFFFFL); return this; }
        /** IANA time zone, {@code timezone} in every event's context. */
        public Builder timeZone(String zone) { this.timeZone = zone; return this; }

        private Builder number(int key, long value) {
            numbers[key - EngineNative.CONFIG_FLUSH_AT] = value;
            numberSet[key - EngineNative.CONFIG_FLUSH_AT] = true;
            return this;
        }

        /** Opens the data folder, restores what it holds and starts the engine. */
        public EmpMix build() throws IOException {
            long config = EngineNative.configNew();
            if (config == 0) {
                throw new EmpMixException(14, "configuration could not be made");
            }
            try {
                string(config, EngineNative.CONFIG_INGEST_KEY, ingestKey, null, null);
                string(config, EngineNative.CONFIG_ENDPOINT, endpoint, null, null);
                string(config, EngineNative.CONFIG_LIBRARY, "empmix-jvm", "0.1.0", null);
                if (conferenceId != null) string(config, EngineNative.CONFIG_CONFERENCE_ID, conferenceId, null, null);
                if (deviceModel != null) string(config, EngineNative.CONFIG_DEVICE_MODEL, deviceModel, null, null);
                if (locale != null) string(config, EngineNative.CONFIG_LOCALE, locale, null, null);
                if (timeZone != null) string(config, EngineNative.CONFIG_TIME_ZONE, timeZone, null, null);
                if (app != null) string(config, EngineNative.CONFIG_APP, app[0], app[1], app[2]);
                if (os != null) string(config, EngineNative.CONFIG_OS, os[0], os[1], null);
                for (int i = 0; i < numbers.length; i++) {
                    if (numberSet[i]) EmpMixException.check(EngineNative.configNumber(config, EngineNative.CONFIG_FLUSH_AT + i, numbers[i]));
                }
                EmpMixException.check(EngineNative.configNumber(config, EngineNative.CONFIG_SCREEN, screen));
                EmpMixException.check(EngineNative.configNumber(config, EngineNative.CONFIG_PERSIST, dataDir != null ? 1 : 0));
                FileStore store = dataDir == null ? null : new FileStore(dataDir);
                List<String> stored = store == null ? List.of() : store.records();
                byte[][] records = new byte[stored.size()][];
                for (int i = 0; i < records.length; i++) records[i] = utf8(stored.get(i));
                long[] engine = new long[1];
                int rc = EngineNative.create(config, store == null ? null : utf8(store.state()), records,
                        System.currentTimeMillis(), new SecureRandom().nextLong(), engine);
                if (rc != EngineNative.OK && store != null) store.close();
                EmpMixException.check(rc);
                return new EmpMix(engine[0], store, requestTimeout);
            } finally {
                EngineNative.configFree(config);
            }
        }

        private static void string(long config, int key, String a, String b, String c) {
            EmpMixException.check(EngineNative.configString(config, key, utf8(a), utf8(b), utf8(c)));
        }
    }

    private final long engine;
    private final FileStore store;
    private final Duration requestTimeout;
    private final HttpClient http;
    private final ScheduledExecutorService timer;
    /** Storage operations taken from the engine and not applied yet (the disk refused). */
    private final ArrayDeque<byte[][]> unapplied = new ArrayDeque<>();
    private ScheduledFuture<?> armed;
    private long armedAt = -1;
    private boolean closed;

    private EmpMix(long engine, FileStore store, Duration requestTimeout) {
        this.engine = engine;
        this.store = store;
        this.requestTimeout = requestTimeout;
        this.http = HttpClient.newBuilder().connectTimeout(requestTimeout).build();
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "empmix-timer");
            t.setDaemon(true);
            return t;
        });
        synchronized (this) {
            drive(); // the start's state and removals, and any restored events
        }
    }

    static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    private static long now() {
        return System.currentTimeMillis();
    }

    /** Runs a command on a live engine, then drives. */
    private synchronized void command(IntSupplier call) {
        if (closed) throw new EmpMixException(EngineNative.ERR_SHUT_DOWN, "the client was shut down");
        try {
            EmpMixException.check(call.getAsInt());
        } finally {
            drive();
        }
    }

    /** Tracks an event with properties as a JSON object (or null). */
    public void track(String name, String propertiesJson) {
        command(() -> EngineNative.track(engine, now(), utf8(name), utf8(propertiesJson)));
    }

    /** Tracks a page view; {@code conferenceId} and {@code referrer} may be null. */
    public void pageView(String url, String conferenceId, String referrer) {
        command(() -> EngineNative.pageView(engine, now(), utf8(url), utf8(conferenceId), utf8(referrer)));
    }

    /** Tracks a registration; {@code formId} may be null. */
    public void registration(String conferenceId, String formId) {
        command(() -> EngineNative.registration(engine, now(), utf8(conferenceId), utf8(formId)));
    }

    /** Tracks a check-in by {@code method} (for example "qr"). */
    public void checkin(String conferenceId, String method) {
        command(() -> EngineNative.checkin(engine, now(), utf8(conferenceId), utf8(method)));
    }

    /** Tracks an AI chat message of {@code messageLength} characters. */
    public void aiChat(String conferenceId, long messageLength) {
        command(() -> EngineNative.aiChat(engine, now(), utf8(conferenceId), messageLength));
    }

    /** Identifies the user. */
    public void identify(String userId) {
        command(() -> EngineNative.identify(engine, now(), utf8(userId)));
    }

    /** Links another id of this user to the current one. */
    public void alias(String alias) {
        command(() -> EngineNative.alias(engine, now(), utf8(alias)));
    }

    /** Logout: a new anonymous id, no super properties, a new session, no attribution. */
    public void reset() {
        command(() -> EngineNative.reset(engine, now()));
    }

    /** Super properties (a JSON object) on every later event; {@code once} keeps existing values. */
    public void register(String propertiesJson, boolean once) {
        command(() -> EngineNative.register(engine, utf8(propertiesJson), once));
    }

    /** Removes one super property. */
    public void unregister(String key) {
        command(() -> EngineNative.unregister(engine, utf8(key)));
    }

    /** Opts out (purging unsent events) or back in. Persisted. */
    public void setOptedOut(boolean optedOut) {
        command(() -> EngineNative.setOptedOut(engine, optedOut));
    }

    /** A share link for {@code targetUrl} on {@code channel}, counted in {@code conferenceId} (may be null). */
    public ShareLink createShare(String channel, String targetUrl, String conferenceId) {
        byte[][] out = new byte[2][];
        command(() -> EngineNative.createShare(engine, now(), utf8(channel), utf8(targetUrl), utf8(conferenceId), out));
        return new ShareLink(new String(out[0], StandardCharsets.UTF_8), new String(out[1], StandardCharsets.UTF_8));
    }

    /** Handles a URL the app was opened with (records the share open); returns it without {@code _s}. */
    public String handleIncomingUrl(String url) {
        byte[][] out = new byte[1][];
        command(() -> EngineNative.handleIncomingUrl(engine, now(), utf8(url), out));
        return new String(out[0], StandardCharsets.UTF_8);
    }

    /** Sends everything tracked so far; true when it is delivered (or dropped and counted) within the timeout. */
    public synchronized boolean flush(long timeoutMs) throws InterruptedException {
        long[] ticket = new long[1];
        command(() -> EngineNative.flush(engine, false, ticket));
        return await(ticket[0], false, timeoutMs);
    }

    /**
     * Call when the app enters the background (Android: {@code ON_STOP}, inside a short
     * background task): sends everything waiting at once, ignoring the batching window and
     * backoff, waits at most {@code timeoutMs}, and syncs the data folder. Events not sent in
     * time stay stored and go out with the next start. True when nothing was left.
     */
    public synchronized boolean enterBackground(long timeoutMs) throws InterruptedException, IOException {
        if (closed) return true;
        drive();
        byte[][][] out = new byte[1][][];
        long[] id = new long[1];
        for (;;) {
            out[0] = null;
            EmpMixException.check(EngineNative.pollTransmit(engine, now(), true, 0, out, id));
            if (out[0] == null) break;
            send(id[0], out[0]);
        }
        boolean idle = await(0, true, timeoutMs);
        if (store != null) store.sync();
        return idle;
    }

    /**
     * Stops taking events, sends what is queued for at most {@code timeoutMs}, and frees the
     * engine. Later calls throw {@code shut_down}. True when nothing was left unsent.
     */
    public synchronized boolean shutdown(long timeoutMs) throws InterruptedException {
        if (closed) return true;
        long[] ticket = new long[1];
        EmpMixException.check(EngineNative.flush(engine, true, ticket));
        drive();
        boolean idle = await(0, true, timeoutMs);
        close();
        return idle;
    }

    /** Frees the engine without draining: unsent events stay stored (or, in memory, are lost). */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (armed != null) armed.cancel(false);
        timer.shutdownNow();
        EngineNative.free(engine);
        if (store != null) {
            try {
                store.close();
            } catch (IOException e) {
                // Everything applied was written; only the final sync failed.
            }
        }
    }

    /** The engine's counters. */
    public synchronized Stats stats() {
        if (closed) throw new EmpMixException(EngineNative.ERR_SHUT_DOWN, "the client was shut down");
        long[] s = new long[10];
        EmpMixException.check(EngineNative.stats(engine, s));
        return new Stats(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9]);
    }

    /** Waits (releasing the lock) until the flush {@code ticket} is done, or the engine is idle. */
    private boolean await(long ticket, boolean idle, long timeoutMs) throws InterruptedException {
        long giveUp = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        boolean[] progress = new boolean[2];
        for (;;) {
            if (closed) return false;
            EmpMixException.check(EngineNative.progress(engine, ticket, progress));
            if (idle ? progress[1] : progress[0]) return true;
            long left = giveUp - System.nanoTime();
            if (left <= 0) return false;
            wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
        }
    }

    /** Step 2 of the driver's contract: store, send, re-arm. Holds the lock. */
    private void drive() {
        if (closed) return;
        byte[][][] out = new byte[1][][];
        for (;;) {
            out[0] = null;
            EmpMixException.check(EngineNative.pollPersist(engine, out));
            if (out[0] == null) break;
            unapplied.add(out[0]);
        }
        while (!unapplied.isEmpty() && store != null) {
            try {
                store.apply(unapplied.peek());
                unapplied.poll();
            } catch (IOException e) {
                break; // kept, in order, and tried again on the next drive
            }
        }
        long[] id = new long[1];
        for (;;) {
            out[0] = null;
            EmpMixException.check(EngineNative.pollTransmit(engine, now(), false, 0, out, id));
            if (out[0] == null) break;
            send(id[0], out[0]);
        }
        long[] deadline = new long[1];
        EmpMixException.check(EngineNative.pollTimeout(engine, now(), deadline));
        rearm(unapplied.isEmpty() ? deadline[0] : Math.min(Math.max(deadline[0], 0), now() + 1000));
        notifyAll();
    }

    /** Sends one request; its outcome comes back on the HTTP client's thread. */
    private void send(long id, byte[][] parts) {
        HttpRequest.Builder request;
        try {
            request = HttpRequest.newBuilder(URI.create(new String(parts[0], StandardCharsets.UTF_8)))
                    .timeout(requestTimeout)
                    .POST(HttpRequest.BodyPublishers.ofByteArray(parts[1]));
            for (int i = 2; i + 1 < parts.length; i += 2) {
                request.header(new String(parts[i], StandardCharsets.UTF_8), new String(parts[i + 1], StandardCharsets.UTF_8));
            }
        } catch (IllegalArgumentException e) {
            answer(id, 0, null, null);
            return;
        }
        http.sendAsync(request.build(), HttpResponse.BodyHandlers.ofByteArray()).whenComplete((response, error) -> {
            synchronized (this) {
                if (error != null || response == null) {
                    answer(id, 0, null, null);
                } else {
                    answer(id, response.statusCode(), response.headers().firstValue("Retry-After").orElse(null), response.body());
                }
                drive();
            }
        });
    }

    private void answer(long id, int status, String retryAfter, byte[] body) {
        if (!closed) {
            EmpMixException.check(EngineNative.handleResponse(engine, now(), id, status, utf8(retryAfter), body));
        }
    }

    /** Keeps one timer at {@code deadline} (ms since the epoch; -1: none). */
    private void rearm(long deadline) {
        if (deadline == armedAt && armed != null && !armed.isDone()) return;
        if (armed != null) armed.cancel(false);
        armed = null;
        armedAt = deadline;
        if (deadline < 0) return;
        // At least a few ms: a deadline that stays in the past must not spin the thread.
        long delay = Math.max(5, deadline - now());
        armed = timer.schedule(() -> {
            synchronized (this) {
                if (closed) return;
                armedAt = -1;
                EmpMixException.check(EngineNative.handleTimeout(engine, now()));
                drive();
            }
        }, delay, TimeUnit.MILLISECONDS);
    }
}
