-- One order-sized JSON body, the same shape `trade2026 bench orders` sends.
wrk.method = "POST"
wrk.body = '{"account":"bench-0","price":"44550","quantity":"0.001","side":"buy","symbol":"BTCUSDT","time_in_force":"ioc","type":"limit"}'
wrk.headers["Content-Type"] = "application/json"
