-- The Nexmark source over Sluice's NDJSON ingest files (`sluice-bench generate --format ndjson`):
-- one line per event, {"key": "<event id>", "timestamp": <epoch ms>, "value": {"<kind>": {...}}}.
-- Event time is the record timestamp; watermark = dateTime - 4 s (NEXMARK.md §1.1).
-- ${PATH} is replaced by the runner with the input file or directory.
CREATE TABLE nexmark (
  `key` STRING,
  `timestamp` BIGINT,
  `value` ROW<
    person ROW<id BIGINT, name STRING, email_address STRING, credit_card STRING, city STRING,
               state STRING, date_time BIGINT, extra STRING>,
    auction ROW<id BIGINT, item_name STRING, description STRING, initial_bid BIGINT,
                reserve BIGINT, date_time BIGINT, expires BIGINT, seller BIGINT,
                category BIGINT, extra STRING>,
    bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
            date_time BIGINT, extra STRING>>,
  dateTime AS TO_TIMESTAMP_LTZ(`timestamp`, 3),
  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${PATH}',
  'format' = 'json',
  'json.fail-on-missing-field' = 'false',
  'json.ignore-parse-errors' = 'false'
);

-- The three views of the Flink Nexmark benchmark, with its camelCase column names.
CREATE VIEW person AS
SELECT `value`.person.id AS id, `value`.person.name AS name,
       `value`.person.email_address AS emailAddress, `value`.person.credit_card AS creditCard,
       `value`.person.city AS city, `value`.person.state AS state, dateTime,
       `value`.person.extra AS extra
FROM nexmark WHERE `value`.person IS NOT NULL;

CREATE VIEW auction AS
SELECT `value`.auction.id AS id, `value`.auction.item_name AS itemName,
       `value`.auction.description AS description, `value`.auction.initial_bid AS initialBid,
       `value`.auction.reserve AS reserve, dateTime,
       TO_TIMESTAMP_LTZ(`value`.auction.expires, 3) AS expires,
       `value`.auction.seller AS seller, `value`.auction.category AS category,
       `value`.auction.extra AS extra
FROM nexmark WHERE `value`.auction IS NOT NULL;

CREATE VIEW bid AS
SELECT `value`.bid.auction AS auction, `value`.bid.bidder AS bidder,
       `value`.bid.price AS price, `value`.bid.channel AS channel, `value`.bid.url AS url,
       dateTime, `value`.bid.extra AS extra
FROM nexmark WHERE `value`.bid IS NOT NULL;
