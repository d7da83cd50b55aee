package dev.sluice.connect;

import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.source.SourceConnector;

/**
 * Reads a text file line by line into a topic, one record per line (value: the line as a
 * string; source partition {"file": path}, source offset {"position": byte after the
 * line}). Tails the file: lines appended later are read too. What Kafka's
 * FileStreamSourceConnector does, without its dependency on kafka-clients' internals.
 *
 * <p>Config: {@code file}, {@code topic}.
 */
public class LineFileSourceConnector extends SourceConnector {
    static final String VERSION = "1";
    static final ConfigDef CONFIG = new ConfigDef()
        .define("file", ConfigDef.Type.STRING, ConfigDef.NO_DEFAULT_VALUE, ConfigDef.Importance.HIGH, "the file to read")
        .define("topic", ConfigDef.Type.STRING, ConfigDef.NO_DEFAULT_VALUE, ConfigDef.Importance.HIGH, "the topic to write");

    private Map<String, String> props;

    @Override
    public void start(Map<String, String> props) {
        CONFIG.parse(props);
        this.props = Map.copyOf(props);
    }

    @Override
    public Class<? extends Task> taskClass() {
        return LineFileSourceTask.class;
    }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        // One file: one task.
        return List.of(props);
    }

    @Override
    public void stop() {
    }

    @Override
    public ConfigDef config() {
        return CONFIG;
    }

    @Override
    public String version() {
        return VERSION;
    }
}
