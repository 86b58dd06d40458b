//! The driver's blob side on real stores in a directory (`FileStore` + `FileBlobStore`), offline:
//! adding in pieces, reading back verified, what collection keeps (pinned, named by a context's
//! state) and removes, a restart that keeps finished blobs and drops an unfinished add, and
//! typed refusals.

use std::path::PathBuf;

use tabmesh_base::ContextId;
use tabmesh_blobs::{chunk_bytes, BlobId, CHUNK_SIZE};
use tabmesh_net::{NetError, Node, NodeOptions};
use tabmesh_storage::{BlobStore as _, FileBlobStore, FileStore};

const OFFLINE: &str =
    "/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWMyai6ae6Q42ANqQsxJrSwrKWcNdYEJ4PryeFfdYZrbU1";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(test: &str) -> Dir {
    let path = std::env::temp_dir().join(format!("tabmesh-net-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    Dir(path)
}

async fn start(dir: &Dir) -> anyhow::Result<(Node, tokio::task::JoinHandle<Result<(), NetError>>)> {
    let store = FileStore::open(dir.0.join("kv"))?;
    let blobs = FileBlobStore::open(dir.0.join("blobs"))?;
    let (node, _events, driver) =
        Node::start(store, blobs, NodeOptions::new(OFFLINE.parse()?)).await?;
    Ok((node, tokio::spawn(driver)))
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Adds `bytes` in pieces of 100 000 bytes; returns its id.
async fn add(
    node: &Node,
    bytes: &[u8],
    pin: bool,
    ctx: Option<ContextId>,
) -> anyhow::Result<BlobId> {
    let handle = node.blob_add_begin(pin, ctx).await?;
    for piece in bytes.chunks(100_000) {
        node.blob_add_write(handle, piece.to_vec()).await?;
    }
    Ok(node.blob_add_finish(handle).await?.id)
}

async fn read(node: &Node, blob: BlobId) -> anyhow::Result<Vec<u8>> {
    let info = node
        .blob_info(blob)
        .await?
        .ok_or_else(|| anyhow::anyhow!("unknown"))?;
    let mut out = Vec::new();
    for index in 0..info.chunks {
        out.extend(node.blob_read(blob, index).await?);
    }
    Ok(out)
}

#[tokio::test]
async fn blobs_are_added_in_pieces_read_back_collected_when_unreferenced_and_kept_over_a_restart(
) -> anyhow::Result<()> {
    let dir = dir("blobs");
    let (node, driver) = start(&dir).await?;
    let ctx = node
        .call(|core, now| core.create_context(now, None, b""))
        .await??
        .0;
    let big = data(CHUNK_SIZE * 5 / 2, 1);
    let pinned = add(&node, &big, true, Some(ctx)).await?;
    // The id is the content's: chunking it whole gives the same.
    assert_eq!(pinned, chunk_bytes(&big)?.1.id);
    assert_eq!(read(&node, pinned).await?, big);
    let info = node
        .blob_info(pinned)
        .await?
        .ok_or_else(|| anyhow::anyhow!("info"))?;
    assert!(
        info.complete && info.pinned && info.contexts == vec![ctx],
        "{info:?}"
    );

    // Unpinned blobs: one named by the context's state (a BlobRef's text in a value), one not.
    let named = add(&node, &data(1000, 2), false, None).await?;
    let loose = add(&node, &data(1000, 3), false, None).await?;
    let text = tabmesh_blobs::ref_text(&named);
    node.call(move |core, now| {
        core.commit(now, ctx, |txn| {
            txn.map("files")?
                .insert(b"a", format!("{{\"file\":\"{text}\"}}").as_bytes())?;
            Ok(())
        })
    })
    .await??;
    let report = node.blob_gc().await?;
    assert_eq!((report.blobs, report.kept), (1, 2), "{report:?}");
    assert_eq!(node.blob_info(loose).await?, None);
    assert!(matches!(
        node.blob_read(loose, 0).await,
        Err(NetError::UnknownBlob(b)) if b == loose
    ));
    // Deleting a blob the state names unpins it but keeps it.
    assert!(!node.blob_delete(named).await?);
    assert!(node.blob_info(named).await?.is_some());

    // An add that never finishes, then a restart.
    let handle = node.blob_add_begin(true, None).await?;
    node.blob_add_write(handle, data(CHUNK_SIZE + 10, 4))
        .await?;
    node.stop().await;
    driver.await??;
    let mut blobs = FileBlobStore::open(dir.0.join("blobs"))?;
    let records = blobs.records().await?.len();
    assert_eq!(records, 5, "two blobs, their two slots, the unfinished add");

    let (node, driver) = start(&dir).await?;
    assert_eq!(read(&node, pinned).await?, big);
    assert_eq!(read(&node, named).await?, data(1000, 2));
    let mut blobs = FileBlobStore::open(dir.0.join("blobs"))?;
    assert_eq!(
        blobs.records().await?.len(),
        4,
        "the unfinished add is gone"
    );
    let listed: Vec<BlobId> = node.blob_list().await?.iter().map(|i| i.id).collect();
    let mut expected = vec![pinned, named];
    expected.sort();
    assert_eq!(listed, expected);

    // Typed refusals: an unknown add handle, an unknown context, a chunk past the end.
    assert!(matches!(
        node.blob_add_write(999, vec![1]).await,
        Err(NetError::UnknownUpload(999))
    ));
    assert!(matches!(
        node.blob_add_begin(true, Some(ContextId([9; 32]))).await,
        Err(NetError::UnknownContext(_))
    ));
    assert!(matches!(
        node.blob_read(pinned, 3).await,
        Err(NetError::Blob(tabmesh_blobs::BlobError::ChunkIndex {
            index: 3,
            count: 3
        }))
    ));

    // A chunk lost from a blob recorded whole (relaxed durability and a crash, or damage): the
    // read fails typed, and the blob is no longer whole, so a fetch would get it again.
    let slot = std::fs::read_dir(dir.0.join("blobs"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("1").exists())
        .ok_or_else(|| anyhow::anyhow!("a slot holding chunk 1"))?;
    std::fs::remove_file(slot.join("1"))?;
    assert!(matches!(
        node.blob_read(pinned, 1).await,
        Err(NetError::UnknownBlob(b)) if b == pinned
    ));
    let info = node
        .blob_info(pinned)
        .await?
        .ok_or_else(|| anyhow::anyhow!("info"))?;
    assert!(!info.complete, "{info:?}");
    node.stop().await;
    driver.await??;
    Ok(())
}
