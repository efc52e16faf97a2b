"""Emulated BLE wearables for tests: bumble peripherals reached through the unmodified bleak API.

Pieces (docs: ../shared/docs/ble-testing.md §2–3):

- `harness.EmulatedRadio`: an in-process bumble `LocalLink` with one central. Use it as an async
  context manager, `await radio.add(wearable)`, then pass `backend=radio.client_backend` to
  `bleak.BleakClient` (or `collector.ble.run_session` / `collect`) and
  `scanner_backend=radio.scanner_backend` to `BleakScanner` / `collector.ble.find_device`.
  `EmulatedRadio(mtu=23)` skips the MTU exchange, so notifications are cut to 20 bytes.
- `wearable.EmulatedWearable`: the base class of every emulator; `wearable.Recording` holds the
  source samples (shape (n, 3), g) and their rate.
- `polar.EmulatedPolar`: the Polar PMD emulator, a worked example.
- `scenario`: the end-to-end run every device test shares (`drop_and_reconnect`, then
  `sent_around_drop` + `assert_equal_except_gap`: samples equal the source except one gap).

Writing an emulator for a new profile (`tests/collector/emulation/<profile>.py`)::

    class EmulatedThing(EmulatedWearable):
        service_uuids = (SERVICE_UUID,)          # advertised (128-bit); plus manufacturer_data()

        def build_services(self) -> list[Service]:
            self.data_characteristic = Characteristic(
                DATA_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b"")
            self.ctrl = Characteristic(
                CTRL_UUID, Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
                Characteristic.WRITEABLE, self.command_value(CTRL_UUID))  # writes -> on_command
            return [Service(SERVICE_UUID, [self.ctrl, self.data_characteristic])]

        async def on_command(self, char_uuid: str, data: bytes) -> None:
            if data == START:                    # commands arrive one at a time, in order
                await self.indicate(self.ctrl, b"ok")   # or self.notify(...)
                self.start_streaming()           # frames flow from the next clock tick
            elif data == STOP:
                self.stop_streaming()

        def encode_frame(self, first_k: int, samples_g: np.ndarray) -> bytes:
            return wire_bytes(samples_g)         # device sample index first_k, for counters/clocks

Rules the base class implements, so every emulator behaves the same way:

- Time runs from power-on at `speedup` x real time, `frame_samples` samples per tick, whether or
  not anything is connected. Samples that fall while the link is down or the stream is stopped are
  lost; `wearable.sent` lists the `SentRange(connection, start, stop)` of recording samples that
  were sent, which is the ground truth for "equal except the gap".
- Pass `clock=wearable.host_clock` to the session: it gives the host UTC of the last sample of the
  last received frame (`utc_base_ns + k / rate_hz`), so timestamps are exact and reproducible.
- `await wearable.wait_sent(n)` waits for progress; `await wearable.force_disconnect()` stops
  sending, lets frames in flight arrive, then drops the link from the peripheral side (bleak's
  disconnected_callback fires); the peripheral advertises again, so the central can reconnect.
  `on_link_down()` runs on every drop (default: stop streaming; override if the device keeps
  streaming state across connections). `wearable.exhausted` is set once the recording is over.
- Notifications longer than MTU − 3 are cut by bumble, as by real stacks.
"""
