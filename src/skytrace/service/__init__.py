"""The live service: wall-clock pipeline, ingest (MQTT, HTTP), store, REST + websocket API and the web map."""
