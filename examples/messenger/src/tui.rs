//! The full-screen terminal UI: the terminal, the keys, the loop.

use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ricochet_client::{Client, ClientBuilder, Events};
use tokio::sync::mpsc;

use crate::app::{App, Focus, Item, Overlay};
use crate::command::{self, Reply, Settings};
use crate::plain::refresh;
use crate::ui;

/// What a key asks the loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep going.
    Continue,
    /// Leave.
    Quit,
}

/// Runs the full-screen UI until the user quits.
pub async fn run(
    builder: ClientBuilder,
    start: impl AsyncFnOnce(ClientBuilder) -> Result<(Client, Events), String>,
    settings: Settings,
    transport: &str,
) -> ExitCode {
    let mut terminal = ratatui::init();
    let (key_sender, mut keys) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if key_sender.send(event).is_err() {
                return;
            }
        }
    });
    let mut app = App::default();
    let status = builder.bootstrap_status();
    let starting = start(builder);
    tokio::pin!(starting);
    let started = loop {
        if let Some(status) = &status {
            app.bootstrap = status.borrow().clone();
        }
        let _ = terminal.draw(|frame| ui::draw(frame, &app, transport));
        tokio::select! {
            started = &mut starting => break started,
            Some(event) = keys.recv() => {
                if is_ctrl_c(&event) {
                    ratatui::restore();
                    return ExitCode::FAILURE;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    let (client, mut events) = match started {
        Ok(started) => started,
        Err(message) => {
            app.fatal = Some(message.clone());
            let _ = terminal.draw(|frame| ui::draw(frame, &app, transport));
            while let Some(event) = keys.recv().await {
                if matches!(event, TermEvent::Key(key) if key.kind == KeyEventKind::Press) {
                    break;
                }
            }
            ratatui::restore();
            eprintln!("ricochet-messenger: {message}");
            return ExitCode::from(2);
        }
    };
    app.my_id = Some(client.id());
    refresh(&client, &mut app).await;
    load_selected_history(&client, &mut app).await;
    loop {
        let _ = terminal.draw(|frame| ui::draw(frame, &app, transport));
        tokio::select! {
            Some(event) = keys.recv() => {
                if let TermEvent::Key(key) = event
                    && handle_key(key, &client, &mut app, &settings).await == Action::Quit
                {
                    break;
                }
            }
            event = events.next() => {
                let Some(event) = event else { break };
                if app.apply(&event).lists {
                    refresh(&client, &mut app).await;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    app.notice = "Closing connections…".to_owned();
    let _ = terminal.draw(|frame| ui::draw(frame, &app, transport));
    client.shutdown().await;
    ratatui::restore();
    ExitCode::SUCCESS
}

fn is_ctrl_c(event: &TermEvent) -> bool {
    matches!(event, TermEvent::Key(key)
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
}

/// Loads the stored conversation of the selected contact once.
async fn load_selected_history(client: &Client, app: &mut App) {
    if let Some(Item::Contact(id)) = app.selected_item()
        && !app.conversations.contains_key(&id)
        && let Ok(messages) = client.messages(id, None, 200).await
    {
        app.load_history(id, messages);
    }
}

/// Handles one key press.
pub async fn handle_key(
    key: KeyEvent,
    client: &Client,
    app: &mut App,
    settings: &Settings,
) -> Action {
    if key.kind != KeyEventKind::Press {
        return Action::Continue;
    }
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Action::Quit;
    }
    if app.overlay.is_some() {
        // Any key closes an overlay; Esc is the documented one.
        app.overlay = None;
        return Action::Continue;
    }
    match key.code {
        KeyCode::F(1) => app.overlay = Some(Overlay::Help),
        KeyCode::F(2) => app.overlay = Some(Overlay::Qr),
        KeyCode::Tab | KeyCode::BackTab => {
            app.focus = match app.focus {
                Focus::Contacts => Focus::Input,
                Focus::Input => Focus::Contacts,
            };
        }
        KeyCode::Esc => app.input.clear(),
        KeyCode::PageUp => app.scroll = app.scroll.saturating_add(10),
        KeyCode::PageDown => app.scroll = app.scroll.saturating_sub(10),
        KeyCode::Up => {
            app.move_selection(-1);
            load_selected_history(client, app).await;
        }
        KeyCode::Down => {
            app.move_selection(1);
            load_selected_history(client, app).await;
        }
        KeyCode::Enter if app.focus == Focus::Input => {
            let line = std::mem::take(&mut app.input);
            if line.trim().is_empty() {
                return Action::Continue;
            }
            app.scroll = 0;
            let reply = match command::parse(&line) {
                Ok(command) => command::run(command, client, app, settings).await,
                Err(message) => Err(message),
            };
            match reply {
                Ok(Reply::Quit) => return Action::Quit,
                Ok(Reply::Help) => app.overlay = Some(Overlay::Help),
                Ok(Reply::Qr) => app.overlay = Some(Overlay::Qr),
                Ok(Reply::Done(message)) => app.notice = message,
                Ok(Reply::Data { summary, .. }) => {
                    if !summary.is_empty() {
                        app.notice = summary;
                    }
                }
                Err(message) => {
                    app.notice = message;
                    // A message that did not go out stays, to send again;
                    // a failed command is in the status line.
                    if !line.starts_with('/') {
                        app.input = line;
                    }
                }
            }
            refresh(client, app).await;
            load_selected_history(client, app).await;
        }
        KeyCode::Enter => app.focus = Focus::Input,
        KeyCode::Backspace => {
            app.input.pop();
        }
        KeyCode::Char(c) => {
            app.focus = Focus::Input;
            app.input.push(c);
        }
        _ => {}
    }
    Action::Continue
}

#[cfg(test)]
mod tests {
    //! The main screens, drawn into ratatui's `TestBackend` from the state
    //! of real clients (two of them, on the direct transport), with the key
    //! handling of the real loop.

    use std::time::Duration;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ricochet_client::transport::tcp::{Directory, TcpTransport};
    use ricochet_client::{ClientBuilder, Event, Events, ReconnectPolicy};

    use super::*;

    const TRANSPORT: &str = "direct TCP (no Tor)";

    fn screen(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(110, 34)).unwrap();
        terminal
            .draw(|frame| ui::draw(frame, app, TRANSPORT))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    async fn start(dir: &std::path::Path, directory: &Directory) -> (Client, Events) {
        ClientBuilder::new(dir)
            .transport(
                TcpTransport::new(directory.clone()).listen_on("127.0.0.1:0".parse().unwrap()),
            )
            .reconnect(ReconnectPolicy::fixed(Duration::from_millis(200)))
            .start()
            .await
            .unwrap()
    }

    /// Feeds client events into `app` until `done` holds.
    async fn pump(
        client: &Client,
        events: &mut Events,
        app: &mut App,
        done: impl Fn(&App) -> bool,
    ) {
        let wait = async {
            while !done(app) {
                let event = events.next().await.unwrap();
                if app.apply(&event).lists {
                    refresh(client, app).await;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap();
    }

    async fn type_line(text: &str, client: &Client, app: &mut App, settings: &Settings) {
        for c in text.chars() {
            handle_key(KeyEvent::from(KeyCode::Char(c)), client, app, settings).await;
        }
        handle_key(KeyEvent::from(KeyCode::Enter), client, app, settings).await;
    }

    #[test]
    fn the_start_screen_shows_bootstrap_progress_and_failures() {
        let mut app = App::default();
        app.bootstrap.percent = 42;
        app.bootstrap.phase = "Loading relay descriptors".to_owned();
        let text = screen(&app);
        assert!(text.contains("Tor bootstrap"), "{text}");
        assert!(text.contains("42% — Loading relay descriptors"), "{text}");
        assert!(text.contains("--direct"), "{text}");

        app.fatal = Some("Tor is not ready after 120 s. Try --direct PEERS-FILE.".to_owned());
        let text = screen(&app);
        assert!(text.contains("Tor is not ready after 120 s"), "{text}");
        assert!(text.contains("Press any key to quit"), "{text}");
    }

    #[tokio::test]
    async fn main_screens_with_real_clients() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::new();
        let (alice, mut alice_events) = start(&dir.path().join("alice"), &directory).await;
        let (bob, mut bob_events) = start(&dir.path().join("bob"), &directory).await;
        let settings = Settings {
            downloads: dir.path().join("downloads"),
            profile: dir.path().to_owned(),
            network_in_use: None,
            network_applies: false,
        };
        let mut app = App {
            my_id: Some(bob.id()),
            ..App::default()
        };
        refresh(&bob, &mut app).await;

        // Empty: our id on top, a welcome.
        let text = screen(&app);
        assert!(text.contains(&bob.id().to_string()), "{text}");
        assert!(text.contains("No contacts yet"), "{text}");

        // F1 help and F2 QR, closed by Esc.
        handle_key(KeyEvent::from(KeyCode::F(1)), &bob, &mut app, &settings).await;
        let text = screen(&app);
        assert!(text.contains("/accept") && text.contains("/quit"), "{text}");
        handle_key(KeyEvent::from(KeyCode::Esc), &bob, &mut app, &settings).await;
        handle_key(KeyEvent::from(KeyCode::F(2)), &bob, &mut app, &settings).await;
        let text = screen(&app);
        assert!(text.contains('█') && text.contains("Your id"), "{text}");
        handle_key(KeyEvent::from(KeyCode::Esc), &bob, &mut app, &settings).await;
        assert!(app.overlay.is_none());

        // A request arrives: it is listed, and selecting it shows it.
        alice
            .send_contact_request(bob.id(), "Bob", "hi, it's alice")
            .await
            .unwrap();
        pump(&bob, &mut bob_events, &mut app, |app| {
            !app.requests.is_empty()
        })
        .await;
        app.move_selection(0);
        let text = screen(&app);
        assert!(text.contains("Contact request"), "{text}");
        assert!(text.contains("hi, it's alice"), "{text}");
        assert!(text.contains("? "), "{text}");

        // /accept with the keyboard; Alice appears online.
        type_line("/accept Alice", &bob, &mut app, &settings).await;
        assert_eq!(app.notice, "Alice is now a contact");
        let alice_id = alice.id();
        pump(&bob, &mut bob_events, &mut app, |app| {
            app.contacts
                .iter()
                .any(|c| c.id == alice_id && c.status == ricochet_client::ContactStatus::Online)
        })
        .await;
        app.select(alice_id);
        let text = screen(&app);
        assert!(text.contains("● Alice"), "{text}");
        assert!(text.contains("Message to Alice"), "{text}");

        // Typing sends to the selected contact; the mark becomes ✓✓.
        type_line("hello alice", &bob, &mut app, &settings).await;
        pump(&bob, &mut bob_events, &mut app, |app| {
            app.conversations.get(&alice_id).is_some_and(|lines| {
                lines.iter().any(|l| {
                    matches!(l, crate::app::ChatLine::Message { status, .. }
                        if *status == ricochet_client::MessageStatus::Acknowledged)
                })
            })
        })
        .await;
        let text = screen(&app);
        assert!(text.contains("me: hello alice ✓✓"), "{text}");
        let clock = chrono::Local::now().format("%H:").to_string();
        assert!(text.contains(&clock), "{text}");

        // A message and a file offer from Alice.
        alice.send_message(bob.id(), "hi bob").await.unwrap();
        let file = dir.path().join("photo.jpg");
        std::fs::write(&file, vec![7u8; 300_000]).unwrap();
        loop {
            let event = alice_events.next().await.unwrap();
            if let Event::ContactStatusChanged { .. } = event {
                break;
            }
        }
        alice.send_file(bob.id(), &file).await.unwrap();
        pump(&bob, &mut bob_events, &mut app, |app| {
            !app.offers.is_empty()
        })
        .await;
        let text = screen(&app);
        assert!(text.contains("Alice: hi bob"), "{text}");
        assert!(text.contains("offers file #"), "{text}");
        let number = *app.offers.keys().next().unwrap();
        type_line(&format!("/accept {number}"), &bob, &mut app, &settings).await;
        let text = screen(&app);
        assert!(text.contains("receiving photo.jpg"), "{text}");
        pump(&bob, &mut bob_events, &mut app, |app| {
            app.transfers.is_empty()
        })
        .await;
        let text = screen(&app);
        assert!(text.contains("receiving photo.jpg done"), "{text}");
        assert_eq!(
            std::fs::read(dir.path().join("downloads/photo.jpg"))
                .unwrap()
                .len(),
            300_000
        );

        // Tab moves the focus; Up/Down the selection; Ctrl-C quits.
        handle_key(KeyEvent::from(KeyCode::Tab), &bob, &mut app, &settings).await;
        assert_eq!(app.focus, Focus::Contacts);
        let quit = handle_key(
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
            &bob,
            &mut app,
            &settings,
        )
        .await;
        assert_eq!(quit, Action::Quit);
        alice.shutdown().await;
        bob.shutdown().await;
    }
}
