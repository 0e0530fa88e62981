-- wrk script: POST /payments with a unique correlationId per request, so the
-- simulator records every one (no 422s). Ids are <run>-<thread>-4000-8000-<n>,
-- with <run> from the clock so repeated runs against one simulator don't collide.
-- usage: wrk -t1 -c50 -d5s -s ops/procsim/bench_post.lua http://127.0.0.1:PORT
local threads = 0
local run = os.time() % 0xffffffff

function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end

function init(args)
    n = 0
    tid = tid or 0
end

function request()
    n = n + 1
    local id = string.format("%08x-%04x-4000-8000-%012x", run, tid, n)
    local body = '{"correlationId":"' .. id ..
        '","amount":19.90,"requestedAt":"2025-07-15T12:34:56.000Z"}'
    return wrk.format("POST", "/payments", {["Content-Type"] = "application/json"}, body)
end
