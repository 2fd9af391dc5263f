// Starts DynamoDB Local with its HTTP listener bound to 127.0.0.1 only (kit.lab.engines compiles this file
// once with the JDK's javac against DynamoDBLocal.jar, caches the class under .kit/cache, and runs it).
//
// Why: DynamoDB Local has no host option (its -help lists -port, -inMemory, -sharedDb, -dbPath, -cors,
// -delayTransientStatuses, -disableTelemetry, -optimizeDbBeforeStartup, -version), and its server is Jetty's
// `new Server(port)`, whose connector binds every interface. Anyone on the network could then reach the
// lab's tables without passing the IAM front door. Jetty reads no system property for a default host, so
// this launcher builds the server the way DynamoDB Local's own main does (ServerRunner's public
// createServerFromCommandLineArgs, the entry point AWS documents for embedding it) and sets the host on
// its connector before starting it. The Jetty server is a private field of DynamoDBProxyServer, so it is
// found by type; when it cannot be found, or holds a connector that cannot be given a host, the launcher
// exits with an error rather than listen beyond loopback.
//
// Telemetry is never configured here (DynamoDB Local's main does that), so nothing is sent anywhere.

import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    static final String HOST = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Server jetty = null;
        for (Field field : DynamoDBProxyServer.class.getDeclaredFields()) {
            if (Server.class.isAssignableFrom(field.getType())) {
                field.setAccessible(true);
                jetty = (Server) field.get(proxy);
            }
        }
        if (jetty == null) {
            fail("DynamoDBProxyServer holds no Jetty Server field in this DynamoDB Local version");
        }
        Connector[] connectors = jetty.getConnectors();
        if (connectors.length == 0) {
            fail("DynamoDB Local's Jetty server has no connector");
        }
        for (Connector connector : connectors) {
            if (!(connector instanceof ServerConnector)) {
                fail("DynamoDB Local's Jetty connector is a " + connector.getClass().getName()
                        + ", which cannot be bound to one host");
            }
            ((ServerConnector) connector).setHost(HOST);
        }
        try {
            proxy.start();
        } catch (Exception e) {
            // One line (with the cause, e.g. "Address already in use", which the kit retries on), then exit:
            // Jetty's threads would otherwise keep a JVM that never listens alive.
            System.err.println("kit: DynamoDB Local could not start: " + e + (e.getCause() == null ? ""
                    : ": " + e.getCause()));
            System.exit(1);
        }
        System.out.println("kit: DynamoDB Local listening on " + HOST + " only");
    }

    static void fail(String why) {
        System.err.println("kit: cannot bind DynamoDB Local to " + HOST + ": " + why + "; refusing to listen"
                + " on every interface");
        System.exit(3);
    }
}
