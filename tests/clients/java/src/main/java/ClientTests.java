import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The Java client (kafka-clients) against a Kafka-protocol broker: Sluice, or Apache Kafka
 * when the test itself is being checked.
 *
 * <pre>java -cp target/sluice-java-clients.jar:target/lib/* ClientTests
 *     --bootstrap 127.0.0.1:9092 --broker sluice|kafka --scenarios a,b,c [--timeout-s 60]</pre>
 *
 * Runs the scenarios one after the other, each bounded, and prints exactly one line per
 * scenario on stdout: {@code PASS name} or {@code FAIL name: reason}. Details go to stderr.
 * Exits 1 if any scenario failed, 2 on bad arguments.
 */
public final class ClientTests {
    /** A scenario: throws to fail. */
    interface Scenario {
        void run(Env env) throws Exception;
    }

    static final Map<String, Scenario> SCENARIOS = new LinkedHashMap<>();

    static {
        ProducerScenarios.register(SCENARIOS);
        ConsumerScenarios.register(SCENARIOS);
        GroupScenarios.register(SCENARIOS);
        AdminScenarios.register(SCENARIOS);
        SecurityScenarios.register(SCENARIOS);
        TxnScenarios.register(SCENARIOS);
    }

    public static void main(String[] args) {
        String bootstrap = null;
        String broker = null;
        List<String> names = new ArrayList<>();
        long timeoutS = 60;
        String secureBootstrap = null;
        String caPath = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--bootstrap": bootstrap = v; i++; break;
                case "--broker": broker = v; i++; break;
                case "--timeout-s": timeoutS = Long.parseLong(v); i++; break;
                case "--secure-bootstrap": secureBootstrap = v; i++; break;
                case "--ca": caPath = v; i++; break;
                case "--scenarios":
                    for (String s : v.split(",")) {
                        if (!s.isBlank()) names.add(s.trim());
                    }
                    i++;
                    break;
                case "--list":
                    SCENARIOS.keySet().forEach(System.out::println);
                    System.exit(0);
                    return;
                default:
                    usage("unknown argument " + a);
            }
        }
        if (bootstrap == null || broker == null || names.isEmpty()) usage("--bootstrap, --broker and --scenarios are required");
        if (!broker.equals("sluice") && !broker.equals("kafka")) usage("--broker must be sluice or kafka");
        for (String n : names) {
            if (!SCENARIOS.containsKey(n)) usage("unknown scenario " + n + " (known: " + String.join(",", SCENARIOS.keySet()) + ")");
        }

        Env env = new Env(bootstrap, broker.equals("kafka"));
        env.secureBootstrap = secureBootstrap;
        env.caPath = caPath;
        int failed = 0;
        for (String name : names) {
            String verdict = runOne(name, SCENARIOS.get(name), env, timeoutS);
            System.out.println(verdict);
            System.out.flush();
            if (!verdict.startsWith("PASS ")) failed++;
        }
        System.err.flush();
        // Exit hard: a timed-out scenario may have left client threads running.
        Runtime.getRuntime().halt(failed == 0 ? 0 : 1);
    }

    private static String runOne(String name, Scenario s, Env env, long timeoutS) {
        long t0 = System.nanoTime();
        ExecutorService ex = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "scenario-" + name);
            t.setDaemon(true);
            return t;
        });
        Future<?> f = ex.submit(() -> {
            s.run(env);
            return null;
        });
        String verdict;
        try {
            f.get(timeoutS, TimeUnit.SECONDS);
            verdict = "PASS " + name;
        } catch (TimeoutException e) {
            f.cancel(true);
            verdict = "FAIL " + name + ": did not finish within " + timeoutS + " s";
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            StringWriter sw = new StringWriter();
            c.printStackTrace(new PrintWriter(sw));
            System.err.println("[" + name + "] failed:\n" + sw);
            verdict = "FAIL " + name + ": " + oneLine(c);
        } catch (InterruptedException e) {
            verdict = "FAIL " + name + ": interrupted";
        } finally {
            ex.shutdownNow();
        }
        System.err.printf("[%s] %s in %.1f s%n", name, verdict.substring(0, 4), (System.nanoTime() - t0) / 1e9);
        return verdict;
    }

    /** The failure on one line: the assertion's text, or the exception chain's classes and messages. */
    static String oneLine(Throwable t) {
        if (t instanceof Env.Failure) return t.getMessage().replace('\n', ' ');
        StringBuilder b = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (b.length() > 0) b.append(" <- ");
            b.append(c.getClass().getName()).append(": ").append(c.getMessage());
            if (c.getCause() == c) break;
        }
        return b.toString().replace('\n', ' ');
    }

    private static void usage(String why) {
        System.err.println("ClientTests: " + why);
        System.err.println("usage: ClientTests --bootstrap HOST:PORT --broker sluice|kafka --scenarios a,b,c [--timeout-s N] | --list");
        System.exit(2);
    }
}
