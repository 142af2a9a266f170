use aster_macros::AsterType;

#[derive(AsterType)]
struct TaskAssignment {
    task_id: String,
}

fn main() {}
