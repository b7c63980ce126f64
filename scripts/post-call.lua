-- wrk script: POST a new call (CAMARA's createSession body) with the bearer token in $TOKEN.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["registrationId"] = "memory-test"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("TOKEN"), "TOKEN is not set")
local sdp = "v=0\\r\\no=- 8066321617929821805 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\nm=audio 42988 RTP/SAVPF 102 113\\r\\nc=IN IP6 2001:e0:410:2448:7a05:9b11:66f2:c9e\\r\\nb=AS:64\\r\\na=rtcp:9 IN IP4 0.0.0.0\\r\\na=candidate:1645903805 1 udp 2122262783 2001:e0:410:2448:7a05:9b11:66f2:c9e 42988 typ host generation 0 network-id 3 network-cost 900\\r\\na=ice-ufrag:4eKp\\r\\na=ice-pwd:D4sF5Pv9vx9ggaqxBlHbAFMx\\r\\na=ice-options:trickle renomination\\r\\na=mid:audio\\r\\na=sendrecv\\r\\na=rtcp-mux\\r\\na=rtpmap:102 AMR-WB/16000\\r\\na=rtpmap:113 telephone-event/16000\\r\\n"
wrk.body = '{"originatorAddress":"tel:+17085852753","originatorName":"Alice","receiverAddress":"tel:+17085854000","receiverName":"Bob","offer":{"sdp":"' .. sdp .. '"}}'
