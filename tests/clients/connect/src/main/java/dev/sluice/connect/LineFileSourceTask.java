package dev.sluice.connect;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

/** The task of {@link LineFileSourceConnector}: complete lines only, from the committed position on. */
public class LineFileSourceTask extends SourceTask {
    private static final int MAX_LINES_PER_POLL = 1000;

    private String file;
    private String topic;
    private Map<String, String> partition;
    private FileChannel channel;
    /** The byte after the last line returned by poll. */
    private long position;
    /** Bytes read past {@link #position}: an incomplete line. */
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private final ByteBuffer buf = ByteBuffer.allocate(64 * 1024);

    @Override
    public String version() {
        return LineFileSourceConnector.VERSION;
    }

    @Override
    public void start(Map<String, String> props) {
        file = props.get("file");
        topic = props.get("topic");
        partition = Map.of("file", file);
    }

    @Override
    public synchronized List<SourceRecord> poll() throws InterruptedException {
        try {
            if (channel == null) {
                try {
                    channel = FileChannel.open(Path.of(file), StandardOpenOption.READ);
                } catch (NoSuchFileException e) {
                    wait(200);
                    return null;
                }
                Map<String, Object> offset = context.offsetStorageReader().offset(partition);
                position = offset == null ? 0 : ((Number) offset.get("position")).longValue();
                channel.position(position);
            }
            List<SourceRecord> records = new ArrayList<>();
            while (records.size() < MAX_LINES_PER_POLL) {
                buf.clear();
                int n = channel.read(buf);
                if (n <= 0) {
                    break;
                }
                byte[] bytes = buf.array();
                for (int i = 0; i < n; i++) {
                    if (bytes[i] == '\n') {
                        byte[] line = pending.toByteArray();
                        pending.reset();
                        position += line.length + 1;
                        records.add(new SourceRecord(partition, Map.of("position", position), topic, null,
                            null, null, Schema.STRING_SCHEMA, new String(line, StandardCharsets.UTF_8)));
                    } else {
                        pending.write(bytes[i]);
                    }
                }
            }
            if (records.isEmpty()) {
                wait(200);
                return null;
            }
            return records;
        } catch (IOException e) {
            throw new ConnectException("reading " + file, e);
        }
    }

    @Override
    public synchronized void stop() {
        notifyAll();
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                // closing a read-only file
            }
            channel = null;
        }
    }
}
