import dev.empmix.EmpMix;
import dev.empmix.EmpMixException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The JVM binding against a real server, one mode per run (driven by tests/jvm.rs):
 *   seed CONF            three clients, the seed chain A -> B -> C; prints CODE_A / CODE_B
 *   track DIR N CONF     N page views stored in DIR against an unreachable server; prints READY
 *                        and waits to be killed
 *   send DIR             opens DIR and sends what it holds; prints SENT <delivered>
 *   outage DIR CONF      20 events delivered by enterBackground; then (after DOWN on stdin) 30 more while the
 *                        server is down; then (after UP) everything; prints PHASE1, PHASE2, SENT
 * Endpoint and key from EMPMIX_ENDPOINT and EMPMIX_INGEST_KEY. Exits non-zero on any failure.
 */
public final class EngineJvmTest {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static EmpMix client(Path dir) throws Exception {
        EmpMix.Builder b = new EmpMix.Builder(System.getenv("EMPMIX_INGEST_KEY"), System.getenv("EMPMIX_ENDPOINT"))
                .flushInterval(Duration.ofMillis(200))
                .backoffBase(Duration.ofMillis(100))
                .backoffCap(Duration.ofMillis(500))
                .requestTimeout(Duration.ofSeconds(3))
                .app("EmpMix JVM tests", "1.2.3", "45")
                .os("Android", "14")
                .deviceModel("Pixel 8")
                .locale("de-DE")
                .screen(1080, 2400)
                .timeZone("Europe/Berlin");
        if (dir != null) b.dataDir(dir);
        return b.build();
    }

    static void seed(String conf) throws Exception {
        String target = "https://m-app.example/conf/" + conf;
        EmpMix a = client(null), b = client(null), c = client(null);
        a.pageView(target, conf, null);
        EmpMix.ShareLink linkA = a.createShare("wechat", target, conf);
        check(linkA.url().contains("_s=" + linkA.code()), linkA.url());
        String clean = b.handleIncomingUrl(linkA.url());
        check(clean.equals(target), clean);
        b.pageView(clean, conf, null);
        EmpMix.ShareLink linkB = b.createShare("link", clean, conf);
        c.handleIncomingUrl(linkB.url());
        c.pageView(target, conf, "https://chat.example/");
        c.identify("user-c");
        c.registration(conf, "form-1");
        c.checkin(conf, "qr");
        c.aiChat(conf, 42);
        c.track("custom_event", "{\"nested\":{\"ok\":[1,2,3]},\"emoji\":\"\uD83C\uDF89\"}");
        try {
            c.track("bad", "[1]");
            check(false, "a JSON array is refused");
        } catch (EmpMixException e) {
            check(e.code == 3, "invalid_json: " + e.getMessage());
        }
        check(a.flush(10000) && b.flush(10000) && c.flush(10000), "flushed");
        EmpMix.Stats s = c.stats();
        check(s.delivered() == 7 && s.queued() == 0 && s.inFlight() == 0, s.toString());
        System.out.println("CODE_A " + linkA.code());
        System.out.println("CODE_B " + linkB.code());
        check(a.shutdown(5000), "a drained");
        try {
            a.track("late", null);
            check(false, "a shut-down client refuses");
        } catch (EmpMixException e) {
            check(e.code == 5, "shut_down: " + e.getMessage());
        }
        b.shutdown(5000);
        c.shutdown(5000);
    }

    static void track(Path dir, int n, String conf) throws Exception {
        EmpMix client = client(dir);
        for (int i = 0; i < n; i++) {
            client.pageView("https://m-app.example/persist/" + i, conf, null);
        }
        System.out.println("READY");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }

    static void send(Path dir) throws Exception {
        EmpMix client = client(dir);
        check(client.flush(20000), "flushed");
        System.out.println("SENT " + client.stats().delivered());
        check(client.shutdown(5000), "drained");
    }

    static void outage(Path dir, String conf) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        EmpMix client = client(dir);
        for (int i = 0; i < 20; i++) client.pageView("https://m-app.example/outage/" + i, conf, null);
        // Sent as an app entering the background does: everything at once, then the folder synced.
        check(client.enterBackground(10000), "phase 1 sent from the background");
        System.out.println("PHASE1 " + client.stats().delivered());
        System.out.flush();
        check("DOWN".equals(in.readLine()), "DOWN");
        for (int i = 20; i < 50; i++) client.pageView("https://m-app.example/outage/" + i, conf, null);
        check(!client.flush(1500), "nothing is delivered while the server is down");
        EmpMix.Stats down = client.stats();
        System.out.println("PHASE2 " + down.delivered() + " " + down.retried() + " " + (down.queued() + down.inFlight()));
        System.out.flush();
        check("UP".equals(in.readLine()), "UP");
        check(client.flush(30000), "everything flushed after the server came back");
        EmpMix.Stats s = client.stats();
        System.out.println("SENT " + s.delivered() + " dropped " + (s.droppedQueueFull() + s.droppedExpired()
                + s.droppedTooLarge() + s.droppedRejected() + s.droppedOptedOut() + s.droppedLost()));
        check(client.shutdown(5000), "drained");
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "seed": seed(args[1]); break;
            case "track": track(Path.of(args[1]), Integer.parseInt(args[2]), args[3]); break;
            case "send": send(Path.of(args[1])); break;
            case "outage": outage(Path.of(args[1]), args[2]); break;
            default: throw new IllegalArgumentException(args[0]);
        }
        System.out.println("JVM_OK");
    }
}
